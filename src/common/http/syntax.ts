/**
 * HTTP/1.1 syntax shared by the request and response parsers (RFC 9110 §5.5, RFC 9112 §5).
 * One definition, so the two sides of the proxy can never disagree on what is valid.
 */

/** A field name or method: RFC 9110 §5.6.2 `token`. */
export const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * True when `text` holds a control character other than HTAB: CR, LF and NUL are never valid in
 * a field value, and a bare LF or CR is where parsers disagree on line ends (smuggling, response
 * splitting; RFC 9112 §2.2).
 */
export function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}
