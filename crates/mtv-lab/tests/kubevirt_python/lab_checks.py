# What the kubevirt_python scripts share (imported from PYTHONPATH, which kubevirt_python.rs sets):
# a check that prints what it proved and stops the script at the first mismatch, and the Python
# kubernetes client on the lab's kubeconfig (the script's first argument).
import sys

from kubernetes import client, config


def check(ok, what):
    if not ok:
        raise AssertionError(what)
    print("ok:", what)


def kubernetes_apis_in(namespace):
    """The custom-objects and core APIs of the lab, with `namespace` created for the script."""
    config.load_kube_config(config_file=sys.argv[1])
    core = client.CoreV1Api()
    core.create_namespace({"metadata": {"name": namespace}})
    return client.CustomObjectsApi(), core
