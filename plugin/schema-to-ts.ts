/**
 * Prints a TypeScript type for a JSON Schema made by contract.ts (the subset it emits: primitives,
 * const/enum, arrays, tuples, objects with optional properties and index signatures, anyOf, typed arrays).
 */
import type { JsonSchema } from './contract';

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function literal(value: unknown): string {
  return JSON.stringify(value);
}

export function schemaToTs(schema: JsonSchema, indent = ''): string {
  if (typeof schema['x-typedArray'] === 'string') return schema['x-typedArray'];
  if ('const' in schema) return literal(schema.const);
  if (Array.isArray(schema.enum)) return schema.enum.map(literal).join(' | ');
  if (Array.isArray(schema.anyOf)) {
    return (schema.anyOf as JsonSchema[]).map((s) => wrapUnionMember(schemaToTs(s, indent))).join(' | ');
  }
  if (schema.not !== undefined) return 'never';
  switch (schema.type) {
    case 'string':
      return 'string';
    case 'number':
    case 'integer':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'null':
      return 'null';
    case 'array':
      if (Array.isArray(schema.items)) return `[${(schema.items as JsonSchema[]).map((s) => schemaToTs(s, indent)).join(', ')}]`;
      return `Array<${schemaToTs((schema.items as JsonSchema | undefined) ?? {}, indent)}>`;
    case 'object':
      return objectToTs(schema, indent);
    default:
      return 'unknown';
  }
}

function wrapUnionMember(text: string): string {
  return text.includes('=>') ? `(${text})` : text;
}

function objectToTs(schema: JsonSchema, indent: string): string {
  const properties = (schema.properties as Record<string, JsonSchema> | undefined) ?? {};
  const required = new Set((schema.required as string[] | undefined) ?? []);
  const inner = `${indent}  `;
  const lines = Object.entries(properties).map(([name, prop]) => {
    const key = IDENTIFIER.test(name) ? name : literal(name);
    const doc = typeof prop.description === 'string' ? `${inner}/** ${prop.description.replace(/\*\//g, '*\\/').replace(/\n/g, ' ')} */\n` : '';
    return `${doc}${inner}${key}${required.has(name) ? '' : '?'}: ${schemaToTs(prop, inner)};`;
  });
  const extra = schema.additionalProperties;
  if (extra && typeof extra === 'object') lines.push(`${inner}[key: string]: ${schemaToTs(extra as JsonSchema, inner)};`);
  else if (extra === true) lines.push(`${inner}[key: string]: unknown;`);
  return lines.length === 0 ? '{}' : `{\n${lines.join('\n')}\n${indent}}`;
}

/** `export interface Name {...}` for an object schema, `export type Name = ...` otherwise. */
export function declareType(name: string, schema: JsonSchema, doc: string): string {
  const body = schemaToTs(schema);
  const comment = `/** ${doc} */\n`;
  return schema.type === 'object' && !schema.anyOf
    ? `${comment}export interface ${name} ${body}\n`
    : `${comment}export type ${name} = ${body};\n`;
}
