# openshift-python-wrapper against the lab: a VM whose NIC names a NetworkAttachmentDefinition that does
# not exist is started; its VMI stays Pending with KubeVirt's FailedCreate reason (the launcher pod cannot
# be rendered), and runs once the NAD exists.
import sys

from ocp_resources.namespace import Namespace
from ocp_resources.network_attachment_definition import NetworkAttachmentDefinition
from ocp_resources.resource import get_client
from ocp_resources.virtual_machine import VirtualMachine
from ocp_resources.virtual_machine_instance import VirtualMachineInstance
from timeout_sampler import TimeoutSampler

from lab_checks import check

client = get_client(config_file=sys.argv[1])
NS = "kv-nad"


Namespace(client=client, name=NS).deploy(wait=True)
vm = VirtualMachine(client=client, name="vm-nad", namespace=NS, body={"spec": {
    "runStrategy": "Manual",
    "template": {"spec": {
        "domain": {"cpu": {"cores": 1}, "memory": {"guest": "1Gi"},
                   "devices": {"interfaces": [{"name": "default", "masquerade": {}},
                                              {"name": "storage", "bridge": {}, "macAddress": "02:00:00:aa:bb:cc"}]}},
        "networks": [{"name": "default", "pod": {}}, {"name": "storage", "multus": {"networkName": "storage-net"}}],
    }}}})
vm.deploy()
vm.start()
expected = f"failed to locate network attachment definition {NS}/storage-net"
for sample in TimeoutSampler(wait_timeout=30, sleep=0.5, func=lambda: vm.instance.to_dict().get("status", {})):
    failures = [c for c in sample.get("conditions", []) if c.get("reason") == "FailedCreate"]
    if failures:
        break
check(expected in failures[0]["message"], f"the VM reports FailedCreate: {failures[0]}")
check(failures[0]["type"] == "Synchronized" and failures[0]["status"] == "False", "Synchronized=False")
check(sample.get("printableStatus") == "Starting" and "ready" not in sample, f"not running: {sample}")
vmi = VirtualMachineInstance(client=client, name="vm-nad", namespace=NS)
check(vmi.instance.status.phase == "Pending", "the VMI is Pending")

NetworkAttachmentDefinition(client=client, name="storage-net", namespace=NS, config={
    "cniVersion": "0.3.1", "name": "storage-net", "type": "bridge", "bridge": "br1"}).deploy()
vm.wait_for_ready_status(status=True, timeout=30)
macs = [i.mac for i in vmi.instance.status.interfaces]
check("02:00:00:aa:bb:cc" in macs and all(len(m) == 17 for m in macs), f"interfaces carry their MACs: {macs}")
print("missing nad ok")
