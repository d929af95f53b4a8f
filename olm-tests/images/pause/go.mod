module locust-k8s-operator.local/images/pause

go 1.26
