"""The emulated API, one module per area: each holds its routes next to their handlers.

A handler parses the request, calls the area's functions over the emulator's state
(:class:`~sectigo_iot.emulator._service.Service`) and renders the answer; ``_app.py``
only assembles the areas' ``ROUTES``.
"""
