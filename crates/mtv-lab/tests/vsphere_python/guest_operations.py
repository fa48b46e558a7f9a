# pyVmomi Guest Operations against a powered-on lab VM (argv[3]): upload a file, download it, run
# `nmcli device show` into a file and read it back; a powered-off VM refuses guest operations.
import sys

from pyVim.connect import Disconnect
from pyVim.task import WaitForTask
from pyVmomi import vim


si, ctx = connect()
content = si.RetrieveContent()
vm = vm_named(content, sys.argv[3])
check(vm is not None, "the VM found")
auth = vim.vm.guest.NamePasswordAuthentication(username="cloud-user", password="lab-guest-password")
files = content.guestOperationsManager.fileManager
processes = content.guestOperationsManager.processManager

try:
    files.InitiateFileTransferFromGuest(vm, auth, "/etc/hostname")
    check(False, "a powered-off VM refuses guest operations")
except vim.fault.InvalidPowerState:
    check(True, "a powered-off VM refuses guest operations (InvalidPowerState)")

WaitForTask(vm.PowerOnVM_Task())
check(vm.guest.toolsRunningStatus == "guestToolsRunning", "VMware Tools run once powered on")
marker = b"mtv-tests data marker 42\n"
url = files.InitiateFileTransferToGuest(vm, auth, "/root/mtv-marker.txt",
                                        vim.vm.guest.FileManager.FileAttributes(), len(marker), True)
status, _ = http("PUT", url, ctx, body=marker)
check(status == 200, "the file uploaded to " + url.split("?")[0])
info = files.InitiateFileTransferFromGuest(vm, auth, "/root/mtv-marker.txt")
status, body = http("GET", info.url, ctx)
check(info.size == len(marker) and body == marker, "the file downloaded back as written")
try:
    files.InitiateFileTransferToGuest(vm, auth, "/root/mtv-marker.txt",
                                      vim.vm.guest.FileManager.FileAttributes(), len(marker), False)
    check(False, "no overwrite without overwrite=True")
except vim.fault.FileAlreadyExists:
    check(True, "no overwrite without overwrite=True (FileAlreadyExists)")

spec = vim.vm.guest.ProcessManager.ProgramSpec(programPath="/bin/bash",
                                               arguments="-c 'nmcli device show > /tmp/nmcli.out'")
pid = processes.StartProgramInGuest(vm, auth, spec)
[process] = processes.ListProcessesInGuest(vm, auth, [pid])
check(process.exitCode == 0 and process.endTime is not None, "nmcli ran (pid %d)" % pid)
info = files.InitiateFileTransferFromGuest(vm, auth, "/tmp/nmcli.out")
status, body = http("GET", info.url, ctx)
text = body.decode()
macs = [d.macAddress.upper() for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]
check(all(mac in text for mac in macs) and "IP4.ADDRESS[1]:" in text, "nmcli shows the VM's NICs")
missing = processes.StartProgramInGuest(vm, auth, vim.vm.guest.ProcessManager.ProgramSpec(programPath="/usr/bin/no-such-tool", arguments=""))
check(processes.ListProcessesInGuest(vm, auth, [missing])[0].exitCode == 127, "an unknown program exits 127")
WaitForTask(vm.PowerOffVM_Task())
Disconnect(si)
print("guest operations ok")
