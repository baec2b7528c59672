package networking

// LoadBridgeConf is loadBridgeConf, for the tests.
func LoadBridgeConf(b []byte) (*bridgeConf, error) { return loadBridgeConf(b) }
