"""The TLS tests' CA and certificates, made once per session (trustme)."""

from __future__ import annotations

import pytest
import trustme
from tls_support import Certs


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> Certs:
    folder = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return Certs(ca, ca_file, folder)
