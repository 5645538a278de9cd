"""Internals of the SOAP (partner API) hook: the zeep client, record conversion, fault translation."""
