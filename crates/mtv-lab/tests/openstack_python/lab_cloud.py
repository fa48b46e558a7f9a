# What the openstack_python scripts share (imported from PYTHONPATH, which openstack_api.rs sets):
# the official openstacksdk connected to the lab's Keystone v3 as its admin, with the domains,
# project and region the lab has, trusting the lab's CA.
import openstack


def connect(auth_url, cacert, password="lab-password"):
    return openstack.connect(
        auth_url=auth_url,
        username="admin",
        password=password,
        project_name="admin",
        user_domain_name="Default",
        project_domain_id="default",
        region_name="regionOne",
        identity_api_version="3",
        cacert=cacert,
    )
