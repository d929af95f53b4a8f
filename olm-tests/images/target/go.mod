module locust-k8s-operator.local/images/target

go 1.26
