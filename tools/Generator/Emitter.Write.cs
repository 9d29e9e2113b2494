using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Kayak.Generator;

/// <summary>The Write method of each generated message and struct.</summary>
internal sealed partial class Emitter
{
    // ---------------------------------------------------------------- Write

    private void EmitWrite(StructSpec s)
    {
        var w = _w;
        var ctx = StructCtx(s);
        w.Open("public void Write(ref KafkaWriter writer, short version)");
        if (s.IsRoot) VersionGuard();
        foreach (var f in s.Fields)
        {
            if (f.IsTagged) continue;
            var fctx = f.Versions.Intersect(ctx);
            w.If(Cond.In(f.Versions, ctx),
                () => WriteValue(f, Compact(f, fctx), Cond.In(f.Nullable, fctx), f.Prop, false),
                f.Ignorable ? null : () => Unsupported(f));
        }
        var flex = _msg.Flexible.Intersect(ctx);
        var tagged = s.Fields.Where(f => f.IsTagged).OrderBy(f => f.Tag).ToList();
        w.If(Flexible(ctx), () =>
        {
            w.Line("var _unknown = UnknownTaggedFields;");
            w.Line("TaggedFieldSupport.EnsureSorted(_unknown);");
            w.Line("int _numTagged = _unknown?.Count ?? 0;");
            var present = new List<(FieldSpec F, string Flag, VRange P)>();
            foreach (var f in tagged)
            {
                var p = f.Versions.Intersect(f.Tagged).Intersect(flex);
                var pc = Cond.In(p, flex);
                if (pc.IsFalse) { Unsupported(f); continue; }
                string flag = w.Fresh("w");
                w.Line($"bool {flag} = {(pc.IsTrue ? "" : pc.Expr + " && ")}{NonDefault(f, f.Prop)};");
                if (!pc.IsTrue && !f.Ignorable)
                    w.Line($"if (!{flag} && {NonDefault(f, f.Prop)}) throw new UnsupportedVersionException($\"Field {Where(f)} cannot be written at version {{version}}.\");");
                w.Line($"if ({flag}) _numTagged++;");
                present.Add((f, flag, p));
            }
            w.Line("writer.WriteUnsignedVarInt((uint)_numTagged);");
            w.Line("int _u = 0;");
            foreach (var (f, flag, p) in present)
            {
                w.Open($"if ({flag})");
                w.Line($"_u = TaggedFieldSupport.WriteUnknown(ref writer, _unknown, _u, {f.Tag});");
                string ts = w.Fresh("ts");
                w.Line($"int {ts} = 0;");
                SizeValue(f, Cond.True, ts, f.Prop, false, Cond.In(f.Nullable, p));
                w.Line($"writer.WriteUnsignedVarInt({f.Tag});");
                w.Line($"writer.WriteUnsignedVarInt((uint){ts});");
                WriteValue(f, Cond.True, Cond.In(f.Nullable, p), f.Prop, false);
                w.Close();
            }
            w.Line("TaggedFieldSupport.WriteUnknown(ref writer, _unknown, _u, int.MaxValue);");
        }, tagged.TrueForAll(f => f.Ignorable) ? null : () =>
        {
            foreach (var f in tagged) Unsupported(f);
        });
        w.Close();
    }

    private void Unsupported(FieldSpec f)
    {
        if (f.Ignorable) return;
        _w.Line($"if ({NonDefault(f, f.Prop)}) throw new UnsupportedVersionException($\"Field {Where(f)} cannot be written at version {{version}}.\");");
    }

    private void WriteValue(FieldSpec f, Cond compact, Cond nullOk, string x, bool elem)
    {
        var w = _w;
        string type = elem ? f.ElemType : f.Type;
        bool typedNullable = !elem && f.TypedNullable;
        if (!elem && f.IsArray)
        {
            if (typedNullable)
            {
                w.Open($"if ({x} is null)");
                NullCheck(nullOk, f);
                w.Line(compact.IsTrue ? "writer.WriteCompactArrayLength(-1);" : compact.IsFalse ? "writer.WriteArrayLength(-1);"
                    : $"if ({compact.Expr}) writer.WriteCompactArrayLength(-1); else writer.WriteArrayLength(-1);");
                w.Close();
                w.Open("else");
            }
            else w.Open();
            w.Line(compact.IsTrue ? $"writer.WriteCompactArrayLength({x}.Count);" : compact.IsFalse ? $"writer.WriteArrayLength({x}.Count);"
                : $"if ({compact.Expr}) writer.WriteCompactArrayLength({x}.Count); else writer.WriteArrayLength({x}.Count);");
            string e = w.Fresh("e");
            w.Open($"foreach (var {e} in {x})");
            WriteValue(f, compact, Cond.False, e, true);
            w.Close();
            w.Close();
            return;
        }
        if (f.Struct is not null)
        {
            if (typedNullable)
            {
                w.If(nullOk, () =>
                {
                    w.Line($"if ({x} is null) writer.WriteInt8(-1);");
                    w.Open("else");
                    w.Line("writer.WriteInt8(1);");
                    w.Line($"{x}.Write(ref writer, version);");
                    w.Close();
                }, () =>
                {
                    w.Open($"if ({x} is null)");
                    NullCheck(Cond.False, f);
                    w.Close();
                    w.Line($"{x}.Write(ref writer, version);");
                });
            }
            else w.Line($"{x}.Write(ref writer, version);");
            return;
        }
        switch (type)
        {
            case "string":
                string fx = Fitted(f, x, elem);
                if (typedNullable)
                {
                    NullCheckAfter(nullOk, f, x);
                    WriteIf(compact, $"writer.WriteCompactNullableString({fx});", $"writer.WriteNullableString({fx});");
                }
                else WriteIf(compact, $"writer.WriteCompactString({fx});", $"writer.WriteString({fx});");
                break;
            case "bytes":
                if (typedNullable)
                {
                    NullCheckAfter(nullOk, f, x);
                    WriteIf(compact, $"writer.WriteCompactNullableBytes({x}, {x} is null);", $"writer.WriteNullableBytes({x}, {x} is null);");
                }
                else WriteIf(compact, $"writer.WriteCompactNullableBytes({x}, false);", $"writer.WriteNullableBytes({x}, false);");
                break;
            case "records":
                NullCheckAfter(nullOk, f, x);
                // The memory itself, so an output that owns it (a fetched log segment) can send it without a copy.
                WriteIf(compact, $"writer.WriteCompactNullableRecords({x});", $"writer.WriteNullableRecords({x});");
                break;
            default:
                w.Line($"writer.Write{Prim[type].Method}({x});");
                break;
        }
    }

    /// <summary>
    /// Error messages are free text that may quote a request's longest names; they are cut to fit a protocol string
    /// (FreeText.Fit) rather than make the whole response unencodable (issue 15, K14).
    /// </summary>
    private static bool IsFreeText(FieldSpec f) => f.Type == "string" && f.Name.EndsWith("ErrorMessage", StringComparison.Ordinal);

    private static string Fitted(FieldSpec f, string x, bool elem) => !elem && IsFreeText(f) ? $"global::Kayak.Protocol.FreeText.Fit({x})" : x;

    private void WriteIf(Cond c, string a, string b)
    {
        if (c.IsTrue) _w.Line(a);
        else if (c.IsFalse) _w.Line(b);
        else { _w.Line($"if ({c.Expr}) {a}"); _w.Line($"else {b}"); }
    }
}
