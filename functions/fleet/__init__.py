"""The fleet registry: which devices exist, whose they are, what they run and how they feel.

One DynamoDB item per device (table ``DEVICES_TABLE``, partition key ``device_id``), written by the
API's heartbeat route and read by the device-model route (channel pin, tenant) and operators.
"""
