# Deletes a VM through oVirt's official SDK as the Python suite's OvirtProvider.delete_vm does: find it
# by name, stop it when it runs, remove it, and see it gone. Arguments: url ca_file username password name.
import sys

import ovirtsdk4 as sdk
import ovirtsdk4.types as types

url, ca_file, username, password, name = sys.argv[1:6]
connection = sdk.Connection(url=url, username=username, password=password, ca_file=ca_file)
vms_service = connection.system_service().vms_service()
vm = vms_service.list(search=f"name={name}")[0]
vm_service = vms_service.vm_service(vm.id)
if vm_service.get().status != types.VmStatus.DOWN:
    vm_service.shutdown()
vm_service.remove()
try:
    vm_service.get()
    print("FAILED: the VM is still there")
    sys.exit(1)
except sdk.NotFoundError:
    pass
if vms_service.list(search=f"name={name}"):
    print("FAILED: the VM is still listed")
    sys.exit(1)
connection.close()
print("deleted " + vm.id)
