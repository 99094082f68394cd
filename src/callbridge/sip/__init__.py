"""Real telephony: SIP signalling (the registrar, the B2BUA switch) on top of aiosipua."""
