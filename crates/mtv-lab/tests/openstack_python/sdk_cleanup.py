# The official openstacksdk against the lab's OpenStack APIs, phase two: start the server phase one
# booted, snapshot it through Nova (an image naming a volume snapshot), then delete the image, the
# server (its volume goes with it) and the snapshots; on the way, attach and detach a volume through
# Cinder's attachments API.
# argv: auth_url cacert server_id snapshot_id. Prints "cleanup ok".
import sys

import openstack

from lab_cloud import connect

auth_url, cacert, server_id, snapshot_id = sys.argv[1:5]
conn = connect(auth_url, cacert)

server = conn.compute.get_server(server_id)
conn.compute.start_server(server)
server = conn.compute.wait_for_server(server, status="ACTIVE", wait=60)

# Cinder's attachments API (microversion 3.27+) attaches a blank volume to the server, and detaches it.
extra = conn.block_storage.create_volume(size=1, name="sdk-extra")
extra = conn.block_storage.wait_for_status(extra, status="available", wait=60)
attachment = conn.block_storage.create_attachment(extra.id, instance=server.id, connector={})
assert attachment.status == "attached", attachment
server = conn.compute.get_server(server.id)
assert extra.id in [v["id"] for v in server.attached_volumes], server.attached_volumes
assert conn.block_storage.get_volume(extra.id).status == "in-use"
conn.block_storage.delete_attachment(attachment.id)
assert conn.block_storage.get_volume(extra.id).status == "available"
conn.block_storage.delete_volume(extra)
conn.block_storage.wait_for_delete(extra, wait=60)

image = conn.compute.create_server_image(server, name="sdk-clone-image", wait=True, timeout=60)
image = conn.image.get_image(image.id)
assert image.status == "active", image.status
assert image.properties.get("instance_uuid") == server.id or getattr(image, "instance_uuid", None) == server.id, image
image_snapshots = [s for s in conn.block_storage.snapshots(details=True) if s.name == "snapshot for sdk-clone-image"]
assert len(image_snapshots) == 1, image_snapshots
conn.image.delete_image(image)
conn.block_storage.delete_snapshot(image_snapshots[0])

conn.compute.delete_server(server)
conn.compute.wait_for_delete(server, wait=60)
assert conn.compute.find_server("sdk-clone") is None

conn.block_storage.delete_snapshot(snapshot_id)
try:
    conn.block_storage.get_snapshot(snapshot_id)
    sys.exit(f"snapshot {snapshot_id} is still there after its deletion")
except openstack.exceptions.NotFoundException:
    pass
print("cleanup ok")
