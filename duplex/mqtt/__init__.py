"""MQTT integration for kiosks: the wire protocol, the session host and the bridge to a broker.

Nothing here is imported by the core: `duplex.mqtt.bridge` needs the optional `aiomqtt` package
(`pip install 'duplex[mqtt]'`) and is loaded only when `mqtt.enabled` is set. `protocol`,
`limits` and `host` are pure Python and safe to import anywhere.
"""
