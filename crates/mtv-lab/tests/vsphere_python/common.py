# Shared by the pyVmomi scripts: connect to the lab's vSphere as the providers file describes it.
import json
import ssl
import sys
import tempfile
import urllib.parse
import urllib.request

from pyVim.connect import SmartConnect
from pyVmomi import vim


def profile():
    """The profile argv[2] of the providers file argv[1], and an SSL context trusting its CA."""
    with open(sys.argv[1]) as f:
        p = json.load(f)[sys.argv[2]]
    ca = tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False)
    ca.write(p["cacert"])
    ca.close()
    return p, ssl.create_default_context(cafile=ca.name)


def connect():
    p, ctx = profile()
    url = urllib.parse.urlparse(p["api_url"])
    si = SmartConnect(host=url.hostname, port=url.port, user=p["username"], pwd=p["password"],
                      sslContext=ctx)
    return si, ctx


def check(condition, what):
    if not condition:
        print("FAILED:", what)
        sys.exit(1)
    print("ok:", what)


def vm_named(content, name):
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return next((vm for vm in view.view if vm.name == name), None)
    finally:
        view.Destroy()


def http(method, url, ctx, body=None, headers=None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(request, context=ctx) as response:
        return response.status, response.read()
