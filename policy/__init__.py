"""k8s-demo's Pulumi policy pack: the rules in ``policy.rules``, wired up in ``policy/__main__.py``."""
