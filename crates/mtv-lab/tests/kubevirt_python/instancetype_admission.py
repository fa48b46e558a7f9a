# The Python kubernetes client against the lab: KubeVirt's VM admission refuses an instancetype or a
# preference that does not exist and a template that sets what the instancetype owns.

from kubernetes.client.rest import ApiException

from lab_checks import check, kubernetes_apis_in

NS = "kv-admission"
api, _ = kubernetes_apis_in(NS)


def vm(name, spec):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name},
            "spec": {"runStrategy": "Halted", "template": {"spec": {"domain": {"devices": {}}}}, **spec}}


def refused(body):
    try:
        api.create_namespaced_custom_object("kubevirt.io", "v1", NS, "virtualmachines", body)
    except ApiException as e:
        return e
    raise AssertionError(f"{body['metadata']['name']} was accepted")


e = refused(vm("no-such-type", {"instancetype": {"name": "u1.nothing"}}))
check(e.status in (400, 403, 422), f"refused with {e.status}")
check("Failure to find instancetype" in e.body and "u1.nothing" in e.body, e.body)
e = refused(vm("no-such-pref", {"preference": {"name": "nope", "kind": "VirtualMachinePreference"}}))
check("Failure to find preference" in e.body and "virtualmachinepreferences" in e.body, e.body)
check(api.list_namespaced_custom_object("kubevirt.io", "v1", NS, "virtualmachines")["items"] == [],
      "nothing was stored")

api.create_namespaced_custom_object("instancetype.kubevirt.io", "v1beta1", NS, "virtualmachineinstancetypes", {
    "apiVersion": "instancetype.kubevirt.io/v1beta1", "kind": "VirtualMachineInstancetype",
    "metadata": {"name": "mine"}, "spec": {"cpu": {"guest": 4}, "memory": {"guest": "4Gi"}}})
ok = vm("with-mine", {"instancetype": {"name": "mine", "kind": "VirtualMachineInstancetype"}})
api.create_namespaced_custom_object("kubevirt.io", "v1", NS, "virtualmachines", ok)
check(True, "a VM naming an existing namespaced instancetype is accepted")
clash = vm("clash", {"instancetype": {"name": "mine", "kind": "VirtualMachineInstancetype"}})
clash["spec"]["template"]["spec"]["domain"]["cpu"] = {"sockets": 2}
e = refused(clash)
check(e.status == 422 and "conflicts with selected instance type" in e.body, e.body)
print("admission ok")
