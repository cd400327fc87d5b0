"""chkmate: a GitOps reconciler for Terraform, run as a Kubernetes operator on kopf.

Layers (enforced by import-linter, see pyproject.toml):
``api`` ← ``domain`` ← ``clients`` ← ``controllers``/``webhooks`` ← ``main``/``cli``.
``api`` and ``domain`` do no I/O.
"""

GROUP = "chkmate.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
