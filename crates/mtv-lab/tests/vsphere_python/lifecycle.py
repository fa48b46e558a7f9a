# pyVmomi against the lab's /sdk: find a VM, clone it, reconfigure it (disk, NIC, CBT), power it,
# snapshot it, read it back through the property collector, and delete it; the Forklift inventory
# (argv[3] route, argv[4] token, argv[5] provider uid) shows the clone while it exists.
import json
import sys
import urllib.error

from pyVim.connect import Disconnect
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl


si, ctx = connect()
content = si.RetrieveContent()
check(content.about.apiType == "VirtualCenter", "service content: a vCenter")
source = vm_named(content, "mtv-tests-rhel8")
check(source is not None and source._moId == "vm-1001", "the source VM found through a container view")
check(source.config.hardware.numCPU == 2 and source.config.hardware.memoryMB == 4096, "hardware read")
macs = [d.macAddress for d in source.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]
check(macs == ["00:50:56:a1:10:01", "00:50:56:a1:10:02"], "NIC MACs as the lab file has them")
check(content.searchIndex.FindByUuid(None, source.config.uuid, True) == source, "search index by uuid")

name = "pyvmomi-clone-" + sys.argv[6]
spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(pool=source.resourcePool), powerOn=False,
                        template=False, config=vim.vm.ConfigSpec(changeTrackingEnabled=True))
task = source.CloneVM_Task(folder=source.parent, name=name, spec=spec)
WaitForTask(task)
clone = task.info.result
check(isinstance(clone, vim.VirtualMachine) and clone.name == name, "CloneVM_Task made " + clone._moId)
check(clone.config.changeTrackingEnabled, "the clone has changed block tracking")
clone_macs = [d.macAddress for d in clone.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]
check(len(clone_macs) == 2 and not set(clone_macs) & set(macs), "the clone has fresh MACs")

duplicate = source.CloneVM_Task(folder=source.parent, name=name, spec=spec)
try:
    WaitForTask(duplicate)
    check(False, "a second clone of the same name fails")
except vim.fault.DuplicateName:
    check(duplicate.info.state == "error", "a second clone of the same name fails with DuplicateName")

network = next(n for n in content.viewManager.CreateContainerView(content.rootFolder, [vim.Network], True).view
               if n.name == "VM Network")
disk = vim.vm.device.VirtualDisk(
    capacityInKB=3 * 1024 * 1024, controllerKey=1000, unitNumber=1,
    backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(diskMode="persistent", thinProvisioned=True,
                                                          fileName=""))
nic = vim.vm.device.VirtualVmxnet3(
    backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(network=network, deviceName=network.name),
    connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True), addressType="generated")
changes = [vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk),
           vim.vm.device.VirtualDeviceSpec(operation="add", device=nic)]
WaitForTask(clone.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=changes)))
disks = [d for d in clone.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
nics = [d for d in clone.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]
check(len(disks) == 2 and disks[1].capacityInKB == 3 * 1024 * 1024, "ReconfigVM_Task added a 3 GiB disk")
check(len(nics) == 3 and nics[2].backing.network == network, "ReconfigVM_Task added a NIC on VM Network")

WaitForTask(clone.PowerOnVM_Task())
check(clone.runtime.powerState == "poweredOn", "PowerOnVM_Task")
snapshot_task = clone.CreateSnapshot_Task(name="before-migration", description="", memory=False, quiesce=False)
WaitForTask(snapshot_task)
check(clone.snapshot.currentSnapshot == snapshot_task.info.result
      and clone.snapshot.rootSnapshotList[0].name == "before-migration", "CreateSnapshot_Task")

# The property collector, as inventory tools use it: every VM's name and power state in one call.
pc = content.propertyCollector
view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
traversal = vmodl.query.PropertyCollector.TraversalSpec(name="v", type=vim.view.ContainerView, path="view", skip=False)
filter_spec = vmodl.query.PropertyCollector.FilterSpec(
    objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[traversal])],
    propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=["name", "runtime.powerState"])])
result = pc.RetrievePropertiesEx([filter_spec], vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=2))
objects = list(result.objects)
while result.token:
    result = pc.ContinueRetrievePropertiesEx(result.token)
    objects.extend(result.objects)
states = {o.obj._moId: {p.name: p.val for p in o.propSet} for o in objects}
check(states[clone._moId] == {"name": name, "runtime.powerState": "poweredOn"}, "RetrievePropertiesEx pages")
view.Destroy()

# The lab's Forklift inventory sees the clone, powered on, with its three NICs.
route, token, uid = sys.argv[3], sys.argv[4], sys.argv[5]
status, body = http("GET", f"{route}/providers/vsphere/{uid}/vms/{clone._moId}", ctx,
                    headers={"Authorization": f"Bearer {token}"})
inventory_vm = json.loads(body)
check(inventory_vm["name"] == name and inventory_vm["powerState"] == "poweredOn"
      and len(inventory_vm["nics"]) == 3 and inventory_vm["changeTrackingEnabled"],
      "the Forklift inventory shows the clone as pyVmomi left it")

try:
    WaitForTask(clone.Destroy_Task())
    check(False, "a powered-on VM cannot be destroyed")
except vim.fault.InvalidPowerState:
    check(True, "a powered-on VM cannot be destroyed (InvalidPowerState)")
WaitForTask(clone.PowerOffVM_Task())
clone_id = clone._moId
WaitForTask(clone.Destroy_Task())
check(vm_named(content, name) is None, "Destroy_Task removed the clone")
try:
    http("GET", f"{route}/providers/vsphere/{uid}/vms/{clone_id}", ctx,
         headers={"Authorization": f"Bearer {token}"})
    check(False, "the inventory no longer has the clone")
except urllib.error.HTTPError as e:
    check(e.code == 404, "the inventory no longer has the clone")
Disconnect(si)
print("lifecycle ok")
