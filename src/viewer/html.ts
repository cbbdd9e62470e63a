// HTML output. One escaping function, escapeHtml(), applied by the `html` template tag to every
// interpolated value that is not itself markup built by `html`: a value from the log can only
// ever become text, in element content or in a double-quoted attribute.

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

/** Markup built by `html` (already safe). */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

function render(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new Html(out);
}

/** Markup joined with a separator (each part already escaped). */
export function join(parts: Html[], separator: Html | string = ''): Html {
  return new Html(parts.map((p) => p.text).join(render(separator)));
}
