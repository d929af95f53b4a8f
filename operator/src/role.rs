//! The two kinds of Locust pods. Its own module because both the
//! configuration (per-role resource defaults, [`crate::config`]) and the
//! builders ([`crate::resources`]) name it.

/// The two kinds of Locust pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The single coordinating pod.
    Master,
    /// The load-generating pods.
    Worker,
}

impl Role {
    /// `master` or `worker`: the component label value and the child name suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Worker => "worker",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
