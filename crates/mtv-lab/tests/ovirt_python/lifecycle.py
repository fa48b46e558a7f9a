# The lab's oVirt engine driven by oVirt's official SDK (ovirtsdk4), the way the Python suite's
# OvirtProvider does: log in through SSO, check the MTV-CNV data center, find a template, create a VM
# from it, read its NICs, disks and snapshots by following links, power it, read its power events; then
# the engine's JSON and Basic auth with a plain HTTPS client. Prints the VM it made as JSON on the last
# line. Arguments: url ca_file wrong_ca_file username password template vm_name.
import base64
import json
import ssl
import sys
import urllib.request

import ovirtsdk4 as sdk
import ovirtsdk4.types as types

url, ca_file, wrong_ca_file, username, password, template_name, vm_name = sys.argv[1:8]


def check(condition, message):
    if not condition:
        print("FAILED: " + message)
        sys.exit(1)


# Wrong credentials: SSO refuses them, and the SDK says so.
try:
    sdk.Connection(url=url, username=username, password="wrong", ca_file=ca_file).test(
        raise_exception=True
    )
    check(False, "a wrong password logged in")
except sdk.AuthError as error:
    check("access_denied" in str(error), f"wrong password: {error}")
print("wrong password refused")

# A CA the engine's certificate does not chain to: TLS refuses the engine.
try:
    sdk.Connection(url=url, username=username, password=password, ca_file=wrong_ca_file).test(
        raise_exception=True
    )
    check(False, "an unknown CA was trusted")
except sdk.Error as error:
    check("SSL" in str(error) or "certificate" in str(error), f"unknown CA: {error}")
print("unknown CA refused")

# insecure skips verification.
check(
    sdk.Connection(url=url, username=username, password=password, insecure=True).test(),
    "insecure connection",
)

connection = sdk.Connection(url=url, username=username, password=password, ca_file=ca_file)
check(connection.test(raise_exception=True), "test()")
system = connection.system_service()
api = system.get()
check(api.product_info.name == "oVirt Engine", f"product {api.product_info.name}")

# The Python suite refuses an engine without an MTV-CNV data center that is up.
data_centers = [dc for dc in system.data_centers_service().list() if dc.name == "MTV-CNV"]
check(len(data_centers) == 1, "no MTV-CNV data center")
check(data_centers[0].status == types.DataCenterStatus.UP, f"MTV-CNV is {data_centers[0].status}")
clusters = system.clusters_service().list()
check(len(clusters) >= 1, "no cluster")
check(len(system.hosts_service().list()) >= 1, "no host")
check(len(system.storage_domains_service().list()) >= 1, "no storage domain")
networks = {n.id: n.name for n in system.networks_service().list()}
check(len(networks) >= 1, "no network")
profiles = system.vnic_profiles_service().list()
check(all(p.network.id in networks for p in profiles), "a vNIC profile on an unknown network")

# The template, and its NICs' networks (what the suite sizes its NADs by).
templates = system.templates_service().list(search=f"name={template_name}")
check(len(templates) == 1, f"template {template_name}: {len(templates)} found")
template = templates[0]
template_service = system.templates_service().template_service(template.id)
template_networks = []
for nic in template_service.nics_service().list():
    profile = connection.follow_link(nic.vnic_profile)
    template_networks.append(connection.follow_link(profile.network).name)
check(template_networks, "the template has no NICs")
check(not system.vms_service().list(search=f"name={vm_name}"), "the VM exists already")

# Create a VM from the template, as OvirtProvider.clone_vm does.
vms_service = system.vms_service()
vm = vms_service.add(
    types.Vm(
        name=vm_name,
        cluster=types.Cluster(id=template.cluster.id),
        template=types.Template(id=template.id),
        memory_policy=types.MemoryPolicy(guaranteed=0),
    ),
    clone=True,
)
vm_service = vms_service.vm_service(vm.id)
check(vm_service.get().status == types.VmStatus.DOWN, "a new VM is not down")
found = vms_service.list(search=f"name={vm_name}")
check(len(found) == 1 and found[0].id == vm.id, "the new VM is not found by name")
check(found[0].memory == template.memory, "memory differs from the template's")

# NICs, disks and snapshots, followed through their links as OvirtProvider.vm_dict does.
nics = []
for nic in vm_service.nics_service().list():
    nic = connection.follow_link(nic)
    network = connection.follow_link(connection.follow_link(nic.vnic_profile).network)
    nics.append({"name": nic.name, "mac": nic.mac.address, "network": network.name})
check([n["network"] for n in nics] == template_networks, f"NIC networks {nics}")
disks = []
for attachment in vm_service.disk_attachments_service().list():
    disk = connection.follow_link(attachment.disk)
    domain = connection.follow_link(disk.storage_domains[0])
    disks.append({"id": disk.id, "name": disk.name, "size": disk.provisioned_size, "domain": domain.name})
check(disks, "the VM has no disks")
snapshots = [connection.follow_link(s) for s in vm_service.snapshots_service().list()]
check([s.snapshot_type for s in snapshots] == [types.SnapshotType.ACTIVE], "snapshots")

# Power: start, hard stop (USER_STOP_VM, code 33), start, guest shutdown.
vm_service.start()
check(vm_service.get().status == types.VmStatus.UP, "start")
try:
    vm_service.start()
    check(False, "starting a running VM succeeded")
except sdk.Error as error:
    check("VM is running" in str(error), f"start twice: {error}")
vm_service.stop()
check(vm_service.get().status == types.VmStatus.DOWN, "stop")
vm_service.start()
vm_service.shutdown()
check(vm_service.get().status == types.VmStatus.DOWN, "shutdown")
events = system.events_service().list(search=f"Vms.id = {vm.id}")
codes = sorted(e.code for e in events)
check(codes == [32, 32, 33, 73], f"power event codes {codes}")
check(all(e.vm.id == vm.id for e in events), "an event of another VM")

# A disk and a NIC added to the VM.
domain_id = connection.follow_link(vm_service.disk_attachments_service().list()[0].disk).storage_domains[0].id
vm_service.disk_attachments_service().add(
    types.DiskAttachment(
        disk=types.Disk(
            name=f"{vm_name}-extra",
            format=types.DiskFormat.COW,
            provisioned_size=2 * 2**30,
            storage_domains=[types.StorageDomain(id=domain_id)],
        ),
        interface=types.DiskInterface.VIRTIO_SCSI,
        bootable=False,
        active=True,
    )
)
check(len(vm_service.disk_attachments_service().list()) == len(disks) + 1, "added disk")
added_nic = vm_service.nics_service().add(types.Nic(name="nic9", vnic_profile=types.VnicProfile(id=profiles[0].id)))
check(added_nic.mac.address.startswith("56:6f"), f"added NIC MAC {added_nic.mac.address}")
snapshot = vm_service.snapshots_service().add(types.Snapshot(description="sdk-snapshot", persist_memorystate=False))
check(snapshot.description == "sdk-snapshot", "snapshot")

# The engine's JSON, with Basic credentials, read by a plain HTTPS client.
context = ssl.create_default_context(cafile=ca_file)
request = urllib.request.Request(
    f"{url}/vms?search=name%3D{vm_name}",
    headers={
        "Accept": "application/json",
        "Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode(),
    },
)
with urllib.request.urlopen(request, context=context) as response:
    check(response.headers["Content-Type"].startswith("application/json"), "JSON content type")
    document = json.load(response)
listed = document["vm"]
check(len(listed) == 1 and listed[0]["id"] == vm.id, f"JSON list {document}")
check(listed[0]["status"] == "down" and isinstance(listed[0]["memory"], str), "JSON scalars are strings")
check(listed[0]["cluster"]["id"] == template.cluster.id, "JSON cluster reference")
check(any(l["rel"] == "nics" for l in listed[0]["link"]), "JSON links")
connection.close()
print(json.dumps({"id": vm.id, "nics": [n["mac"] for n in nics] + [added_nic.mac.address], "disks": len(disks) + 1}))
