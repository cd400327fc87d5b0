"""The API of chkmate: pydantic models of every kind, their conditions, and the CRDs generated from them.

Promise: no I/O and no imports of kopf or any client; models are frozen values. The CRD schemas in
``crds/`` and the Helm chart are generated from these models by :mod:`chkmate.api.crdgen`.
"""
