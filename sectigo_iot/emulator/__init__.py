"""A local emulator of the Sectigo IoT Manager API, with a real test CA.

Needs the ``emulator`` extra (Starlette, uvicorn, python-multipart)::

    from sectigo_iot.emulator import Emulator

    emulator = Emulator()
    transport = emulator.transport()      # in process, for httpx or SectigoClient
    with emulator.run_in_thread() as url:  # or over HTTP on a free loopback port
        ...
"""

from ._ca import CertificateAuthority
from ._clock import Clock
from ._config import BATCH_OUTCOMES, DEFAULT_USERNAME, EmulatorConfig
from ._emulator import Emulator
from ._faults import FAULT_KINDS, Fault
from ._limits import MAX_BODY_BYTES, MAX_JSON_DEPTH
from ._records import EmulatorBatch, EmulatorCertificate, EmulatorStats, Revocation
from ._server import is_loopback
from ._transport import EmulatorTransport

__all__ = [
    "BATCH_OUTCOMES",
    "DEFAULT_USERNAME",
    "FAULT_KINDS",
    "MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "CertificateAuthority",
    "Clock",
    "Emulator",
    "EmulatorBatch",
    "EmulatorCertificate",
    "EmulatorConfig",
    "EmulatorStats",
    "EmulatorTransport",
    "Fault",
    "Revocation",
    "is_loopback",
]
