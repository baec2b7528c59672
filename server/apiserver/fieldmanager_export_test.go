package apiserver

// SetManagedFields turns the managedFields bookkeeping of ordinary writes
// on or off for every resource s serves now (apply works either way):
// benchmarks compare the cost of a write with and without it. Call it
// while no request is being served.
func SetManagedFields(s *Server, on bool) {
	for _, r := range s.reg.all() {
		r.fields.off = !on
	}
}
