module k8s-demo.sandbox/pause

go 1.26
