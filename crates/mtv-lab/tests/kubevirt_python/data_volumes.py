# The Python kubernetes client against the lab's CDI: standalone DataVolumes (import, blank, clone,
# upload) reach their phases with a Bound claim and PersistentVolume; those that cannot succeed report as
# CDI does (clone without source, missing storage class, an unreachable import host).
import time

from lab_checks import check, kubernetes_apis_in

NS = "cdi-dvs"
api, core = kubernetes_apis_in(NS)


def dv(name, spec):
    api.create_namespaced_custom_object("cdi.kubevirt.io", "v1beta1", NS, "datavolumes", {
        "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "metadata": {"name": name}, "spec": spec})


def get(name):
    return api.get_namespaced_custom_object("cdi.kubevirt.io", "v1beta1", NS, "datavolumes", name)


def wait(name, until, what, timeout=60):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = get(name).get("status", {})
        if until(last):
            return last
        time.sleep(0.2)
    raise AssertionError(f"{name}: {what}; last status {last}")


def condition(status, kind):
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})


storage = lambda size, **extra: {"resources": {"requests": {"storage": size}}, **extra}
dv("imported", {"source": {"registry": {"url": "docker://quay.io/containerdisks/fedora:41"}}, "storage": storage("3Gi")})
dv("empty", {"source": {"blank": {}}, "storage": storage("1Gi", storageClassName="lab-nfs")})
dv("uploaded", {"source": {"upload": {}}, "storage": storage("1Gi")})

seen = set()
deadline = time.time() + 60
while time.time() < deadline:
    st = get("imported").get("status", {})
    seen.add(st.get("phase"))
    if st.get("phase") == "Succeeded":
        break
    time.sleep(0.05)
check(st.get("phase") == "Succeeded" and st["progress"] == "100.0%", f"import Succeeded: {st}")
check("ImportInProgress" in seen or "ImportScheduled" in seen, f"import phases seen: {seen}")
check(condition(st, "Ready")["status"] == "True" and condition(st, "Bound")["status"] == "True", "Ready and Bound")
wait("empty", lambda s: s.get("phase") == "Succeeded", "blank Succeeded")
dv("cloned", {"source": {"pvc": {"name": "imported", "namespace": NS}}, "storage": {}})
st = wait("cloned", lambda s: s.get("phase") == "Succeeded", "clone Succeeded")
wait("uploaded", lambda s: s.get("phase") == "UploadReady", "upload waits for its upload")

for name in ["imported", "empty", "cloned", "uploaded"]:
    pvc = core.read_namespaced_persistent_volume_claim(name, NS)
    check(pvc.status.phase == "Bound" and pvc.spec.volume_name, f"{name}: claim Bound to {pvc.spec.volume_name}")
    owner = pvc.metadata.owner_references[0]
    check(owner.kind == "DataVolume" and owner.name == name, f"{name}: the claim belongs to its DataVolume")
    pv = core.read_persistent_volume(pvc.spec.volume_name)
    check(pv.status.phase == "Bound" and pv.spec.claim_ref.name == name, f"{name}: volume Bound to the claim")
check(core.read_namespaced_persistent_volume_claim("cloned", NS).spec.resources.requests["storage"] == "3Gi",
      "a clone without a size takes its source's")
check(core.read_namespaced_persistent_volume_claim("empty", NS).spec.storage_class_name == "lab-nfs",
      "the named storage class")

# What cannot succeed.
dv("orphan-clone", {"source": {"pvc": {"name": "nope", "namespace": NS}}, "storage": storage("1Gi")})
st = wait("orphan-clone", lambda s: condition(s, "Bound").get("reason") == "CloneWithoutSource", "CloneWithoutSource")
check(st["phase"] == "Pending" and condition(st, "Bound")["message"] == "The source pvc nope doesn't exist", f"{st}")
dv("no-class", {"source": {"blank": {}}, "storage": storage("1Gi", storageClassName="gold")})
st = wait("no-class", lambda s: s.get("phase") == "Pending" and condition(s, "Bound"), "Pending on the class")
check('storageclass.storage.k8s.io "gold" not found' in condition(st, "Bound")["message"], f"{st}")
check(core.read_namespaced_persistent_volume_claim("no-class", NS).status.phase == "Pending", "its claim Pending")
dv("bad-host", {"source": {"http": {"url": "http://images.invalid/disk.img"}}, "storage": storage("1Gi")})
st = wait("bad-host", lambda s: condition(s, "Running").get("reason") == "Error", "the importer errors")
check(st["phase"] == "ImportInProgress" and st.get("restartCount", 0) >= 1, f"{st}")
check("no such host" in condition(st, "Running")["message"], f"{st}")

# Deleting a DataVolume takes its claim and volume along.
api.delete_namespaced_custom_object("cdi.kubevirt.io", "v1beta1", NS, "datavolumes", "empty")
volume = core.list_persistent_volume().items
deadline = time.time() + 30
while time.time() < deadline:
    names = [p.spec.claim_ref.name for p in core.list_persistent_volume().items]
    if "empty" not in names:
        break
    time.sleep(0.2)
check("empty" not in names, "the deleted DataVolume's volume is gone")
print("data volumes ok")
