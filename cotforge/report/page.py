"""The report page: one self-contained HTML file (inline CSS, plots as base64 PNG data URIs, no scripts)."""

from __future__ import annotations

import base64

import jinja2

from cotforge import __version__
from cotforge.report.section import Section
from cotforge.safe_text import visible

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
  body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222; background: #fafafa; }
  header { background: #2f3e4e; color: #fff; padding: 18px 32px; }
  header h1 { margin: 0 0 4px 0; font-size: 22px; }
  header p { margin: 0; opacity: 0.8; font-size: 13px; }
  nav { padding: 8px 32px; background: #e9edf1; font-size: 13px; }
  nav a { margin-right: 14px; color: #2f3e4e; }
  main { padding: 8px 32px 40px; max-width: 1100px; }
  section { background: #fff; border: 1px solid #e1e4e8; border-radius: 6px; padding: 12px 20px; margin: 16px 0; }
  h2 { font-size: 18px; margin: 4px 0 8px; }
  .status { font-size: 12px; padding: 2px 8px; border-radius: 10px; margin-left: 8px; vertical-align: middle; }
  .ok { background: #dcf2e3; color: #1b6b35; }
  .notrun { background: #f1f1f1; color: #666; }
  .note { color: #555; font-size: 13px; }
  .figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 8px 16px; }
  figure { margin: 10px 0; }
  figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
  figcaption { font-size: 12px; color: #666; }
  table { border-collapse: collapse; font-size: 12px; margin: 8px 0; }
  th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
  th { background: #f3f5f7; }
  caption { text-align: left; font-weight: 600; padding: 4px 0; }
</style>
</head>
<body>
<header>
  <h1>{{ title }}</h1>
  <p>run <code>{{ run_name }}</code> · built {{ created_at }} · cotforge {{ version }}</p>
</header>
<nav>{% for s in sections %}<a href="#{{ s.key }}">{{ s.title }}</a>{% endfor %}</nav>
<main>
{% for s in sections %}
<section id="{{ s.key }}">
  <h2>{{ s.title }}<span class="status {{ 'ok' if s.status == 'ok' else 'notrun' }}">{{ s.status }}</span></h2>
  {% if s.note %}<p class="note">{{ s.note }}</p>{% endif %}
  {% if s.figures %}<div class="figures">
  {% for f in s.figures %}
  <figure><img src="{{ images[f.name] }}" alt="{{ f.caption }}"><figcaption>{{ f.caption }}</figcaption></figure>
  {% endfor %}
  </div>{% endif %}
  {% for t in s.tables %}
  <table><caption>{{ t.title }}</caption>
    <tr>{% for h in t.headers %}<th>{{ h }}</th>{% endfor %}</tr>
    {% for row in t.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>{% endfor %}
  </table>
  {% endfor %}
</section>
{% endfor %}
</main>
</body>
</html>
"""


def _shown(value: object) -> object:
    # Escaping keeps HTML out; control characters (a terminal escape in a model name) are shown, not dropped.
    return visible(value) if isinstance(value, str) else value


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI, so the page needs no other file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_page(sections: list[Section], *, title: str, run_name: str, created_at: str) -> str:
    """The HTML page of ``sections`` (all text escaped, control characters shown; every image inline)."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, finalize=_shown)
    images = {f.name: data_uri(f.png) for s in sections for f in s.figures}
    return env.from_string(_TEMPLATE).render(
        sections=sections,
        images=images,
        title=title,
        run_name=run_name,
        created_at=created_at,
        version=__version__,
    )
