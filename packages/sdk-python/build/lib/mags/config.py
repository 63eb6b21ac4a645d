"""Where the client finds its API token and server URL.

Precedence (the same as the Node SDK and the CLI): explicit argument > ``MAGS_API_TOKEN`` >
``MAGS_TOKEN`` > ``~/.mags/config.json`` (``api_token`` or ``apiToken``); URL: argument >
``MAGS_API_URL`` > config file (``api_url`` or ``apiUrl``) > ``http://127.0.0.1:8090``.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Mapping, Optional, Tuple

DEFAULT_API_URL = "http://127.0.0.1:8090"


def config_path(env: Optional[Mapping[str, str]] = None) -> str:
    """Path of the CLI's config file, ``~/.mags/config.json`` (``HOME`` decides ``~``)."""
    env = os.environ if env is None else env
    home = env.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".mags", "config.json")


def read_config(path: str) -> Dict[str, Any]:
    """The config file's object, or ``{}`` when it is missing or unreadable."""
    try:
        with open(path, "r", encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _first_str(*values: Any) -> Optional[str]:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def normalize_api_url(url: str) -> str:
    """Strip trailing slashes and a trailing ``/api/v1`` so both base forms work."""
    url = url.strip().rstrip("/")
    if url.endswith("/api/v1"):
        url = url[: -len("/api/v1")]
    return url


def resolve(
    api_token: Optional[str] = None,
    api_url: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
) -> Tuple[Optional[str], str]:
    """Return ``(token or None, base URL)`` following the documented precedence."""
    env = os.environ if env is None else env
    config = read_config(config_path(env))
    token = _first_str(
        api_token,
        env.get("MAGS_API_TOKEN"),
        env.get("MAGS_TOKEN"),
        config.get("api_token"),
        config.get("apiToken"),
    )
    url = _first_str(api_url, env.get("MAGS_API_URL"), config.get("api_url"), config.get("apiUrl"))
    return token, normalize_api_url(url or DEFAULT_API_URL)
