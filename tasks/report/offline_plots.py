"""An HTML page template for `dvc plots show` that renders without a network.

DVC's default page loads Vega, Vega-Lite and Vega-Embed from a CDN, so offline its charts are blank. This
template carries the three libraries inline (bundled by `vl-convert-python`, Vega-Lite 5 as DVC's templates are
written for) and leaves out DVC's `{scripts}` placeholder, where the CDN tags would go. `.dvc/config` points
`plots.html_template` at it (`plots/offline.html`, relative to `.dvc/`), so `dvc plots show` writes a page that
works anywhere. Regenerate it after upgrading DVC or vl-convert:

    python -m tasks.report.offline_plots          # writes .dvc/plots/offline.html
"""

from __future__ import annotations

import sys
from pathlib import Path

TEMPLATE = Path(".dvc") / "plots" / "offline.html"
VEGA_LITE_VERSION = "5.21"
"""DVC's plot templates are Vega-Lite 5 specifications."""


def offline_template(bundle: str) -> str:
    """DVC's page (its `{refresh_tag}` and `{plot_divs}` placeholders) with `bundle` inline instead of `{scripts}`,
    wrapped in a function so its top-level names cannot clash with the `var spec` of DVC's plot scripts (it
    publishes `vegaEmbed`, `vega` and `vegaLite` on `window`)."""
    return ("<!DOCTYPE html>\n<html>\n<head>\n    {refresh_tag}\n    <meta charset=\"utf-8\">\n"
            "    <title>DVC Plot</title>\n    <script type=\"text/javascript\">\n(function () {\n" + bundle +
            "\n})();\n    </script>\n"
            "    <style>\n        table { border-spacing: 15px; }\n    </style>\n</head>\n<body>\n"
            "    {plot_divs}\n</body>\n</html>\n")


def write_template(project_dir: Path = Path(".")) -> Path:
    import vl_convert

    path = project_dir / TEMPLATE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(offline_template(vl_convert.javascript_bundle(vl_version=VEGA_LITE_VERSION)))
    return path


if __name__ == "__main__":
    print(write_template(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")))
