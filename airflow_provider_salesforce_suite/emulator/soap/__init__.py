"""The partner SOAP API (``/services/Soap/u/XX.X``): envelopes in, envelopes out, over the one store.

``routes`` registers the surface; ``envelope`` parses requests safely; ``render`` writes
responses and faults; ``ops_*`` hold the operations by group.
"""
