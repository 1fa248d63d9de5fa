// Renders a user task's form (a JSON Schema) as HTML controls, reads the
// values back, and shows the server's 422 details at their fields.
import { h } from './dom.js';

let seq = 0;

// schemaForm returns {el, value(), showErrors(details), clearErrors()}.
export function schemaForm(schema) {
  const uid = 'f' + (++seq);
  if (!schema || schema.type !== 'object' || !schema.properties) {
    // Not a flat object: edit the data as JSON.
    const ta = h('textarea', { id: uid + '-json', rows: 6, class: 'mono', 'aria-describedby': uid + '-json-err' }, '{}');
    const err = h('div', { id: uid + '-json-err', class: 'field-error', role: 'alert' });
    return {
      el: h('div', { class: 'field' }, h('label', { for: uid + '-json' }, 'Data (JSON)'), ta, err),
      value() { return JSON.parse(ta.value || 'null'); },
      showErrors(details) { err.textContent = details.map((d) => d.path.replace(/^body\.data/, '') + ' ' + d.message).join('; '); },
      clearErrors() { err.textContent = ''; },
    };
  }
  const required = new Set(schema.required || []);
  const fields = [];
  const el = h('div', { class: 'schema-form' });
  for (const [name, prop] of Object.entries(schema.properties)) {
    const id = `${uid}-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    const label = prop.title || name;
    const req = required.has(name);
    const errEl = h('div', { id: id + '-err', class: 'field-error', role: 'alert' });
    const help = prop.description ? h('div', { id: id + '-help', class: 'help' }, prop.description) : null;
    const described = [help ? id + '-help' : null, id + '-err'].filter(Boolean).join(' ');
    let control, read;
    const type = Array.isArray(prop.type) ? prop.type.find((t) => t !== 'null') : prop.type;
    if (prop.enum) {
      control = h('select', { id, name, required: req, 'aria-describedby': described },
        h('option', { value: '' }, req ? 'Choose…' : '(none)'),
        prop.enum.map((v) => h('option', { value: JSON.stringify(v), selected: prop.default === v }, String(v))));
      read = () => (control.value === '' ? undefined : JSON.parse(control.value));
    } else if (type === 'boolean') {
      control = h('input', { id, name, type: 'checkbox', checked: prop.default === true, 'aria-describedby': described });
      read = () => control.checked;
    } else if (type === 'number' || type === 'integer') {
      control = h('input', {
        id, name, type: 'number', inputmode: type === 'integer' ? 'numeric' : 'decimal', required: req,
        step: type === 'integer' ? 1 : 'any', min: prop.minimum, max: prop.maximum, value: prop.default, 'aria-describedby': described,
      });
      read = () => (control.value === '' ? undefined : Number(control.value));
    } else if (type === 'string') {
      const long = (prop.maxLength || 0) > 120 || prop.format === 'textarea';
      const inputType = { date: 'date', 'date-time': 'datetime-local', email: 'email', uri: 'url' }[prop.format] || 'text';
      control = long
        ? h('textarea', { id, name, rows: 3, required: req, maxlength: prop.maxLength, 'aria-describedby': described }, prop.default || '')
        : h('input', { id, name, type: inputType, required: req, maxlength: prop.maxLength, minlength: prop.minLength, pattern: prop.pattern, value: prop.default, 'aria-describedby': described });
      read = () => {
        if (control.value === '') return undefined;
        if (prop.format === 'date-time') return new Date(control.value).toISOString();
        return control.value;
      };
    } else {
      control = h('textarea', { id, name, rows: 3, class: 'mono', 'aria-describedby': described }, prop.default !== undefined ? JSON.stringify(prop.default) : '');
      read = () => (control.value.trim() === '' ? undefined : JSON.parse(control.value));
    }
    const row = h('div', { class: ['field', type === 'boolean' ? 'field-check' : ''] },
      type === 'boolean' ? [control, h('label', { for: id }, label)] : [h('label', { for: id }, label, req ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null), control],
      help, errEl);
    if (req) control.setAttribute('aria-required', 'true');
    el.append(row);
    fields.push({ name, control, read, errEl });
  }
  return {
    el,
    value() {
      const out = {};
      for (const f of fields) {
        const v = f.read();
        if (v !== undefined) out[f.name] = v;
      }
      return out;
    },
    showErrors(details) {
      this.clearErrors();
      const other = [];
      for (const d of details) {
        const ptr = (d.path || '').replace(/^body\.data\/?/, '');
        const name = ptr.split('/')[0].replace(/~1/g, '/').replace(/~0/g, '~');
        const f = fields.find((x) => x.name === name);
        if (f) {
          f.errEl.textContent = (f.errEl.textContent ? f.errEl.textContent + '; ' : '') + d.message;
          f.control.setAttribute('aria-invalid', 'true');
        } else other.push(d);
      }
      const first = fields.find((f) => f.errEl.textContent);
      if (first) first.control.focus();
      return other;
    },
    clearErrors() {
      for (const f of fields) { f.errEl.textContent = ''; f.control.removeAttribute('aria-invalid'); }
    },
  };
}
