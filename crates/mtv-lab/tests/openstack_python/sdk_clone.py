# The official openstacksdk against the lab's OpenStack APIs, phase one: authenticate with Keystone v3
# (domains, project, region, the lab's CA), find a server, snapshot its boot volume, create a volume
# from the snapshot, boot a server from it with the source's flavor and networks, stop it.
# argv: auth_url cacert. Prints one JSON line of the ids it made.
import json
import sys

import openstack
import os

from lab_cloud import connect

# SDK_DEBUG=1 logs every request and answer (to stderr).
if os.environ.get("SDK_DEBUG"):
    openstack.enable_logging(debug=True, http_debug=True)

auth_url, cacert = sys.argv[1], sys.argv[2]

# Wrong credentials: Keystone answers 401 (authorize() wraps it).
try:
    connect(auth_url, cacert, "not-the-password").authorize()
    sys.exit("a wrong password was accepted")
except openstack.exceptions.SDKException as e:
    assert "HTTP 401" in str(e), e

conn = connect(auth_url, cacert)
token = conn.authorize()
assert token, "no token"

source = conn.compute.find_server("mtv-tests-rhel8", ignore_missing=False)
assert source.status == "SHUTOFF", source.status
# From microversion 2.47 on a server embeds its flavor, named but without id.
assert source.flavor.original_name == "m1.medium", source.flavor
flavor = conn.compute.find_flavor(source.flavor.original_name, ignore_missing=False)
assert flavor.vcpus == 2 and flavor.ram == 4096, flavor
volumes = [v["id"] for v in source.attached_volumes]
assert len(volumes) == 1, volumes
boot = conn.block_storage.get_volume(volumes[0])
assert boot.status == "in-use" and boot.is_bootable, boot
assert boot.attachments[0]["server_id"] == source.id, boot.attachments

snapshot = conn.block_storage.create_snapshot(volume_id=boot.id, name="sdk-snap", force=True)
snapshot = conn.block_storage.wait_for_status(snapshot, status="available", wait=60)
assert snapshot.size == boot.size, snapshot

volume = conn.block_storage.create_volume(size=boot.size, snapshot_id=snapshot.id, name="sdk-clone-disk")
volume = conn.block_storage.wait_for_status(volume, status="available", wait=60)
assert volume.snapshot_id == snapshot.id and volume.is_bootable, volume
assert volume.volume_type == boot.volume_type, (volume.volume_type, boot.volume_type)

networks = []
for port in conn.network.ports(device_id=source.id):
    networks.append({"uuid": port.network_id})
assert len(networks) == 2, networks
private = conn.network.find_network("mtv-private", ignore_missing=False)
assert networks[0]["uuid"] == private.id, (networks, private.id)
subnets = list(conn.network.subnets(network_id=private.id))
assert subnets and subnets[0].cidr == "10.50.1.0/24", subnets

server = conn.compute.create_server(
    name="sdk-clone",
    flavor_id=flavor.id,
    networks=networks,
    block_device_mapping=[{
        "boot_index": 0,
        "uuid": volume.id,
        "source_type": "volume",
        "destination_type": "volume",
        "delete_on_termination": True,
    }],
)
server = conn.compute.wait_for_server(server, status="ACTIVE", wait=60)
assert server.flavor.vcpus == 2, server.flavor
assert [v["id"] for v in server.attached_volumes] == [volume.id], server.attached_volumes
macs = [p.mac_address for p in conn.network.ports(device_id=server.id)]
assert len(macs) == 2 and all(m.startswith("fa:16:3e:") for m in macs), macs

conn.compute.stop_server(server)
server = conn.compute.wait_for_server(server, status="SHUTOFF", wait=60)

print(json.dumps({"server": server.id, "volume": volume.id, "snapshot": snapshot.id, "macs": macs}))
