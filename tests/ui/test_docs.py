"""The API documentation page works offline: its assets are vendored and served locally."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from leptonic import Platform, Settings
from leptonic.api import create_app
from leptonic.api.testing import serve_in_process
from leptonic.storage.artifacts.memory import MemoryArtifactStore
from leptonic.storage.metadata.memory import MemoryMetadataStore


def test_docs_page_and_its_assets_are_local(tmp_path: Path) -> None:
    settings = Settings.for_home(tmp_path, "docs")
    platform = Platform(settings, metadata=MemoryMetadataStore(), artifacts=MemoryArtifactStore())
    with serve_in_process(create_app(settings, platform=platform)) as transport:
        client = httpx.Client(base_url="http://leptonic", transport=transport)
        page = client.get("/docs")
        assert page.status_code == 200
        html = page.text
        assert "swagger" in html.lower()
        urls = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", html)
        assert urls, html
        for url in urls:
            assert url.startswith("/"), f"/docs loads {url} from outside the server"
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 500, url
        assert "cdn." not in html and "https://" not in html
        assert client.get("/openapi.json").json()["info"]["title"] == "Leptonic"
