# openshift-python-wrapper against the lab: a golden image imported by a DataVolume, a DataSource on it,
# a VM from a cluster instancetype and preference whose disk clones the DataSource (dataVolumeTemplates),
# started, restarted and stopped through subresources.kubevirt.io while keeping runStrategy Manual, waiting
# on the status shapes KubeVirt writes (status.ready absent when stopped).
import sys

from kubernetes.client.rest import ApiException
from ocp_resources.data_source import DataSource
from ocp_resources.datavolume import DataVolume
from ocp_resources.namespace import Namespace
from ocp_resources.persistent_volume import PersistentVolume
from ocp_resources.persistent_volume_claim import PersistentVolumeClaim
from ocp_resources.resource import get_client
from ocp_resources.virtual_machine import VirtualMachine
from ocp_resources.virtual_machine_cluster_instancetype import VirtualMachineClusterInstancetype
from ocp_resources.virtual_machine_cluster_preference import VirtualMachineClusterPreference
from ocp_resources.virtual_machine_instance import VirtualMachineInstance
from timeout_sampler import TimeoutSampler

from lab_checks import check

client = get_client(config_file=sys.argv[1])
NS = "kv-lifecycle"


def conflict_message(call):
    try:
        call()
    except ApiException as e:
        check(e.status == 409, f"409 Conflict, got {e.status}: {e.body}")
        return e.body if isinstance(e.body, str) else e.body.decode()
    raise AssertionError("expected 409 Conflict")


Namespace(client=client, name=NS).deploy(wait=True)
VirtualMachineClusterInstancetype(client=client, name="u1.small", cpu={"guest": 2}, memory={"guest": "2Gi"}).deploy()
VirtualMachineClusterPreference(
    client=client,
    name="fedora",
    cpu={"preferredCPUTopology": "preferCores"},
    devices={"preferredDiskBus": "virtio", "preferredInterfaceModel": "virtio"},
).deploy()

golden = DataVolume(
    client=client, name="fedora-golden", namespace=NS, api_name="storage", size="5Gi",
    source_dict={"http": {"url": "https://images.example.com/fedora-41.qcow2"}},
)
golden.deploy()
golden.wait_for_dv_success(timeout=60)
check(golden.instance.status.progress == "100.0%", "the import reports 100.0%")
DataSource(client=client, name="fedora", namespace=NS, source={"pvc": {"name": "fedora-golden", "namespace": NS}}).deploy()
ds = DataSource(client=client, name="fedora", namespace=NS)
ds.wait_for_condition(condition="Ready", status="True", timeout=30)
check(True, "the DataSource is Ready")

vm = VirtualMachine(
    client=client,
    name="vm-it",
    namespace=NS,
    body={
        "spec": {
            "runStrategy": "Manual",
            "instancetype": {"name": "u1.small"},
            "preference": {"name": "fedora"},
            "dataVolumeTemplates": [{
                "metadata": {"name": "vm-it-root"},
                "spec": {"sourceRef": {"kind": "DataSource", "name": "fedora"},
                         "storage": {"resources": {"requests": {"storage": "10Gi"}}}},
            }],
            "template": {"spec": {
                "domain": {"devices": {"disks": [{"name": "root"}], "interfaces": [{"name": "default", "masquerade": {}}]}},
                "networks": [{"name": "default", "pod": {}}],
                "volumes": [{"name": "root", "dataVolume": {"name": "vm-it-root"}}],
            }},
        }
    },
)
vm.deploy()
root = DataVolume(client=client, name="vm-it-root", namespace=NS)
root.wait_for_dv_success(timeout=60)
check(root.instance.status.phase == "Succeeded", "the template's DataVolume cloned the DataSource")
for sample in TimeoutSampler(wait_timeout=30, sleep=0.5, func=lambda: vm.printable_status):
    if sample == "Stopped":
        break
status = vm.instance.to_dict()["status"]
check("ready" not in status and "created" not in status, f"a stopped VM has no ready/created: {status}")

vm.start(wait=True, timeout=60)
check(vm.ready is True, "status.ready once started")
check(vm.instance.spec.runStrategy == "Manual", "start kept runStrategy Manual")
check(vm.instance.status.created is True, "status.created while the VMI exists")
vmi = VirtualMachineInstance(client=client, name="vm-it", namespace=NS)
vmi.wait_for_status(status=VirtualMachineInstance.Status.RUNNING, timeout=30)
domain = vmi.instance.spec.domain
check(domain.cpu.cores == 2 and domain.cpu.sockets == 1, f"the instancetype's 2 vCPUs as cores: {domain.cpu}")
check(domain.memory.guest == "2Gi", "the instancetype's memory")
check(domain.devices.disks[0].disk.bus == "virtio", "the preference's disk bus")
iface = vmi.instance.status.interfaces[0]
check(len(iface.mac or "") == 17, f"the VMI interface reports a MAC: {iface}")
check(vm.printable_status == "Running", "printableStatus Running")
msg = conflict_message(vm.start)
check("VM is already running" in msg, "a second start is refused")

first_uid = vmi.instance.metadata.uid
vm.restart()
for sample in TimeoutSampler(wait_timeout=30, sleep=0.5, func=lambda: vmi.exists):
    if sample and sample.metadata.uid != first_uid and sample.get("status", {}).get("phase") == "Running":
        break
check(True, "restart replaced the VMI")

vm.stop(wait=True, timeout=60)
status = vm.instance.to_dict()["status"]
check("ready" not in status and "created" not in status, f"stopped again: no ready/created: {status}")
check(vm.printable_status == "Stopped", "printableStatus Stopped")
ready = [c for c in status["conditions"] if c["type"] == "Ready"][0]
check(ready["status"] == "False" and ready["reason"] == "VMINotExists", f"Ready=False/VMINotExists: {ready}")
check(vm.instance.spec.runStrategy == "Manual", "stop kept runStrategy Manual")
msg = conflict_message(vm.stop)
check("VM is not running" in msg, "stopping a stopped VM is refused")
msg = conflict_message(vm.restart)
check("VM is not running" in msg, "restarting a stopped VM is refused")

pvc = PersistentVolumeClaim(client=client, name="vm-it-root", namespace=NS)
check(pvc.instance.status.phase == "Bound", "the template DataVolume's claim is Bound")
pv = PersistentVolume(client=client, name=pvc.instance.spec.volumeName)
check(pv.instance.status.phase == "Bound", "its PersistentVolume is Bound")
check(pv.instance.spec.claimRef.name == "vm-it-root", "the volume's claimRef names the claim")

# A Halted VM: start flips the run strategy to Always and stop back to Halted, as virt-api does.
halted = VirtualMachine(client=client, name="vm-halted", namespace=NS, body={"spec": {
    "runStrategy": "Halted", "instancetype": {"name": "u1.small"},
    "template": {"spec": {"domain": {"devices": {}}}}}})
halted.deploy()
halted.start(wait=True, timeout=60)
check(halted.instance.spec.runStrategy == "Always", "start on Halted sets Always")
msg = conflict_message(halted.start)
check("VM is already running" in msg, "a running VM refuses another start (checked before its run strategy)")
halted.stop(wait=True, timeout=60)
check(halted.instance.spec.runStrategy == "Halted", "stop on Always sets Halted")
print("lifecycle ok")
