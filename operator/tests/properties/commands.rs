//! Command splitting

use super::*;

fn v2_with_commands(master: &str, worker: &str) -> v2::LocustTest {
    let mut value = with_identity(VALID_SEEDS[0].clone());
    if value["apiVersion"] != V2_API_VERSION {
        value = convert_value(value, V2_API_VERSION).unwrap();
    }
    value["spec"]["master"]["command"] = json!(master);
    value["spec"]["worker"]["command"] = json!(worker);
    serde_json::from_value(value).unwrap()
}

fn shell_rule_fails(test: &v2::LocustTest, field: &str) -> bool {
    validate(test)
        .iter()
        .any(|v| v.field == field && v.rule.is_some_and(|r| r.ends_with("-shell-syntax")))
}

proptest! {
    #![proptest_config(config())]

    /// No panic; success is a non-empty word list; failures name the field.
    #[test]
    fn split_command_never_panics(command in command_line()) {
        match split_command(&command, MASTER_COMMAND_FIELD) {
            Ok(words) => prop_assert!(!words.is_empty()),
            Err(err) => {
                prop_assert_eq!(err.field(), MASTER_COMMAND_FIELD);
                prop_assert!(!err.reason().is_empty());
                let shown = err.to_string();
                prop_assert!(shown.starts_with("spec.master.command: "), "{}", shown);
            }
        }
    }

    /// Joining words with shell quoting and splitting gives the words back,
    /// unless every word is blank by Unicode's definition (e.g. U+2028, `\r`,
    /// ""): such a command has no program, and the split rejects it.
    #[test]
    fn join_then_split_is_identity(words in vec("\\PC{0,8}|[a-z \\\\'\"#\n-]{0,6}", 1..6)) {
        let joined = shell_words::join(&words);
        let expected = if words.iter().all(|w| w.trim().is_empty()) {
            Err(CommandError::Empty { field: WORKER_COMMAND_FIELD })
        } else {
            Ok(words)
        };
        prop_assert_eq!(split_command(&joined, WORKER_COMMAND_FIELD), expected);
    }

    /// An accepted command is closed: more words on a new line are appended as
    /// they are, and the command's own words do not change (a trailing lone
    /// backslash would glue the next line on).
    #[test]
    fn accepted_commands_are_closed(command in command_line(), more in vec("[a-z-]{1,6}", 1..3)) {
        if let Ok(words) = split_command(&command, MASTER_COMMAND_FIELD) {
            let extended = format!("{command}\n{}", shell_words::join(&more));
            let mut expected = words;
            expected.extend(more);
            prop_assert_eq!(split_command(&extended, MASTER_COMMAND_FIELD), Ok(expected));
        }
    }

    /// The webhook rule accepts exactly the commands the builder can split, and
    /// the container's command + args are the split words followed by the
    /// operator's flags.
    #[test]
    fn validation_agrees_with_the_command_builder(master in command_line(), worker in command_line()) {
        let test = v2_with_commands(&master, &worker);
        for (command, field) in [(&master, MASTER_COMMAND_FIELD), (&worker, WORKER_COMMAND_FIELD)] {
            let blank = command.trim().is_empty();
            let splits = split_command(command, field).is_ok();
            prop_assert_eq!(shell_rule_fails(&test, field), !blank && !splits, "{:?}", command);
        }
        let accepted = validate(&test).is_empty();
        let master_words = master_args(&test.spec);
        let worker_words = worker_args(&test.spec, "t-master");
        prop_assert_eq!(accepted, master_words.is_ok() && worker_words.is_ok());
        if let Ok(words) = master_words {
            let split = split_command(&master, MASTER_COMMAND_FIELD).unwrap_or_default();
            prop_assert_eq!(&words[..split.len()], &split[..]);
            let built = master_container_command(&test.spec).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let ContainerCommand { command, args } = built.clone();
            let mut all = command.clone().unwrap_or_default();
            all.extend(args.iter().cloned());
            prop_assert_eq!(&all, &words);
            prop_assert_eq!(ContainerCommand::from_tokens(words), built);
        }
        if accepted {
            check_accepted_is_buildable(&test)?;
        }
    }
}

#[test]
fn lone_trailing_backslash_is_rejected_by_the_webhook_rule_with_its_field() {
    let test = v2_with_commands("locust -f x.py \\", "locust -f x.py");
    let violations = validate(&test);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].field, MASTER_COMMAND_FIELD);
    assert!(
        violations[0].message.contains("lone backslash"),
        "{violations:?}"
    );
    let test = v2_with_commands("locust -f x.py \\\\", "locust -f 'x.py\\'");
    assert_eq!(validate(&test), vec![]);
}
