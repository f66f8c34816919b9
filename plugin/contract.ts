/**
 * The contract of each handler: its input and output types, read with the TypeScript compiler and
 * turned into JSON Schema (draft-07). The shim validates inputs with it; the client is typed by it.
 *
 * The type of an export made by `fn`/`cls` is `GpuFunction<I, O>`; I and O are read off its
 * `instantiate().invoke(input: I, ctx): Promise<O>` signature, so both annotation forms work alike.
 */
import path from 'node:path';
import ts from 'typescript';
import { ConfigError } from './errors';
import { isTypedArrayName } from '../runtime-shim/protocol';

export type JsonSchema = Record<string, unknown>;

export interface Contract {
  readonly input: JsonSchema;
  readonly output: JsonSchema;
}

export interface ContractRequest {
  readonly file: string;
  readonly exportName: string;
  /** For messages: the function's name in serverless.yml. */
  readonly functionName: string;
}

const COMPILER_OPTIONS: ts.CompilerOptions = {
  strict: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  esModuleInterop: true,
  resolveJsonModule: true,
  skipLibCheck: true,
  noEmit: true,
  types: [],
};

class SchemaWriter {
  private readonly inProgress = new Set<ts.Type>();

  constructor(
    private readonly checker: ts.TypeChecker,
    private readonly where: string,
  ) {}

  write(type: ts.Type, at: string): JsonSchema {
    const { checker } = this;
    const flags = type.flags;
    if (flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return {};
    if (flags & ts.TypeFlags.Never) return { not: {} };
    if (flags & (ts.TypeFlags.Void | ts.TypeFlags.Undefined | ts.TypeFlags.Null)) return { type: 'null' };
    if (flags & ts.TypeFlags.StringLiteral) return { const: (type as ts.StringLiteralType).value };
    if (flags & ts.TypeFlags.NumberLiteral) return { const: (type as ts.NumberLiteralType).value };
    if (flags & ts.TypeFlags.BooleanLiteral) return { const: checker.typeToString(type) === 'true' };
    if (flags & ts.TypeFlags.String || flags & ts.TypeFlags.TemplateLiteral) return { type: 'string' };
    if (flags & ts.TypeFlags.Number) return { type: 'number' };
    if (flags & ts.TypeFlags.Boolean) return { type: 'boolean' };
    if (flags & (ts.TypeFlags.BigInt | ts.TypeFlags.BigIntLiteral | ts.TypeFlags.ESSymbolLike)) {
      throw new ConfigError(this.where, `${at || 'the type'} is ${checker.typeToString(type)}, which cannot travel as JSON`);
    }
    if (type.isUnion()) return this.union(type, at);
    const name = type.getSymbol()?.getName() ?? '';
    if (isTypedArrayName(name) || name === 'Buffer') return { 'x-typedArray': name === 'Buffer' ? 'Uint8Array' : name };
    if (name === 'Date') return { type: 'string', format: 'date-time' };
    if (name === 'Promise') {
      const awaited = checker.getAwaitedType(type);
      if (awaited) return this.write(awaited, at);
    }
    if (checker.isTupleType(type)) {
      const items = checker.getTypeArguments(type as ts.TypeReference).map((t, i) => this.write(t, `${at}/${i}`));
      return { type: 'array', items, minItems: items.length, maxItems: items.length };
    }
    if (checker.isArrayType(type)) {
      const [item] = checker.getTypeArguments(type as ts.TypeReference);
      return { type: 'array', items: this.write(item, `${at}/*`) };
    }
    if (flags & ts.TypeFlags.Object || type.isIntersection()) return this.object(type, at);
    throw new ConfigError(this.where, `${at || 'the type'} has type ${checker.typeToString(type)}, which has no JSON Schema here`);
  }

  private union(type: ts.UnionType, at: string): JsonSchema {
    const parts = type.types.filter((t) => !(t.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Void)));
    if (parts.length === 1) return this.write(parts[0], at);
    const schemas = parts.map((t) => this.write(t, at));
    // `true | false` (how the checker spells boolean inside unions) becomes one boolean again.
    const hasBoth = schemas.some((s) => s.const === true) && schemas.some((s) => s.const === false);
    const list = hasBoth ? [...schemas.filter((s) => s.const !== true && s.const !== false), { type: 'boolean' }] : schemas;
    if (list.length === 1) return list[0];
    if (list.every((s) => 'const' in s && Object.keys(s).length === 1)) return { enum: list.map((s) => s.const) };
    return { anyOf: list };
  }

  private object(type: ts.Type, at: string): JsonSchema {
    const { checker } = this;
    if (type.getCallSignatures().length > 0) {
      throw new ConfigError(this.where, `${at || 'the type'} is a function, which cannot travel to a remote function`);
    }
    if (this.inProgress.has(type)) return {}; // recursive types are accepted as any value below the first level
    this.inProgress.add(type);
    try {
      const properties: Record<string, JsonSchema> = {};
      const required: string[] = [];
      for (const symbol of checker.getPropertiesOfType(type)) {
        const declaration = symbol.valueDeclaration ?? symbol.declarations?.[0];
        const propType = declaration
          ? checker.getTypeOfSymbolAtLocation(symbol, declaration)
          : checker.getTypeOfSymbol(symbol);
        if (declaration && (ts.isMethodDeclaration(declaration) || ts.isMethodSignature(declaration))) continue; // methods are not data
        const name = symbol.getName();
        const property = this.write(propType, `${at}/${name}`);
        const doc = ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim();
        properties[name] = doc ? { description: doc, ...property } : property;
        if (!(symbol.flags & ts.SymbolFlags.Optional)) required.push(name);
      }
      const index = checker.getIndexInfoOfType(type, ts.IndexKind.String);
      const schema: JsonSchema = { type: 'object', properties };
      if (required.length > 0) schema.required = required;
      schema.additionalProperties = index ? this.write(index.type, `${at}/*`) : false;
      return schema;
    } finally {
      this.inProgress.delete(type);
    }
  }
}

function signatureOf(checker: ts.TypeChecker, exported: ts.Type, location: ts.Node, where: string): ts.Signature {
  const instantiate = exported.getProperty('instantiate');
  const instantiateSig = instantiate && checker.getTypeOfSymbolAtLocation(instantiate, location).getCallSignatures()[0];
  const instance = instantiateSig && checker.getReturnTypeOfSignature(instantiateSig);
  const invoke = instance?.getProperty('invoke');
  const invokeSig = invoke && checker.getTypeOfSymbolAtLocation(invoke, location).getCallSignatures()[0];
  if (!invokeSig) {
    throw new ConfigError(where, 'is not a function made by fn() or cls() from serverless-gpu/runtime');
  }
  return invokeSig;
}

/** Reads the contracts of many handlers with one TypeScript program. */
export function readContracts(requests: readonly ContractRequest[], serviceDir: string): Map<ContractRequest, Contract> {
  const files = [...new Set(requests.map((r) => r.file))];
  const program = ts.createProgram(files, COMPILER_OPTIONS);
  const checker = program.getTypeChecker();
  const contracts = new Map<ContractRequest, Contract>();
  for (const request of requests) {
    const relFile = path.relative(serviceDir, request.file);
    const where = `${relFile}: export "${request.exportName}" (function ${request.functionName})`;
    const source = program.getSourceFile(request.file);
    const moduleSymbol = source && checker.getSymbolAtLocation(source);
    if (!source || !moduleSymbol) throw new ConfigError(relFile, 'cannot be read as a TypeScript module');
    const symbol = checker.getExportsOfModule(moduleSymbol).find((s) => s.getName() === request.exportName);
    if (!symbol) throw new ConfigError(where, 'no such export');
    const exported = checker.getTypeOfSymbolAtLocation(symbol, source);
    const signature = signatureOf(checker, exported, source, where);
    const parameter = signature.getParameters()[0];
    const writer = new SchemaWriter(checker, where);
    const input = parameter ? writer.write(checker.getTypeOfSymbolAtLocation(parameter, source), '') : {};
    const output = writer.write(checker.getReturnTypeOfSignature(signature), '');
    contracts.set(request, {
      input: { $schema: 'http://json-schema.org/draft-07/schema#', ...input },
      output: { $schema: 'http://json-schema.org/draft-07/schema#', ...output },
    });
  }
  return contracts;
}
