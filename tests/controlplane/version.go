package main

import "k8s.io/component-base/version"

func kubeVersion() string { return version.Get().GitVersion }
