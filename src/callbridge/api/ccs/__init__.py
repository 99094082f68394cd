"""The Windstream "Contact Center Services" (CCS) dialect: REST at ``/6/v2/api/``, events on the
WebSocket ``/6/v2/sock`` (``../shared/specs/ccs-contact-center-services-api.txt``; docs/ccs.md).

A dialect only translates: a request becomes a call on the services, a result, error or event
becomes CCS's wire format. It owns no business rule.
"""
