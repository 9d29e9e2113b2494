using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Kayak.Generator;

/// <summary>The Read method of each generated message and struct.</summary>
internal sealed partial class Emitter
{
    // ---------------------------------------------------------------- Read

    private void EmitRead(StructSpec s)
    {
        var w = _w;
        var ctx = StructCtx(s);
        w.Open("public void Read(ref KafkaReader reader, short version)");
        if (s.IsRoot) VersionGuard();
        w.Line("UnknownTaggedFields = null;");
        foreach (var f in s.Fields)
        {
            if (f.IsTagged) continue;
            var fctx = f.Versions.Intersect(ctx);
            w.If(Cond.In(f.Versions, ctx), () => ReadValue(f, fctx, Compact(f, fctx), Cond.In(f.Nullable, fctx), f.Prop, false));
        }
        var flex = _msg.Flexible.Intersect(ctx);
        w.If(Flexible(ctx), () =>
        {
            w.Line("uint _numTags = reader.ReadUnsignedVarInt();");
            w.Open("for (uint _t = 0; _t < _numTags; _t++)");
            w.Line("uint _tag = reader.ReadUnsignedVarInt();");
            w.Line("uint _tagSize = reader.ReadUnsignedVarInt();");
            var tagged = s.Fields.Where(f => f.IsTagged).OrderBy(f => f.Tag).ToList();
            if (tagged.Count == 0)
            {
                w.Line("(UnknownTaggedFields ??= new()).Add(reader.ReadUnknownTaggedField((int)_tag, (int)_tagSize));");
            }
            else
            {
                w.Open("switch (_tag)");
                foreach (var f in tagged)
                {
                    var presence = f.Versions.Intersect(f.Tagged).Intersect(flex);
                    var pc = Cond.In(presence, flex);
                    if (pc.IsFalse) continue;
                    w.Line(pc.IsTrue ? $"case {f.Tag}:" : $"case {f.Tag} when {pc.Expr}:");
                    w.Open();
                    w.Line("int _start = reader.Position;");
                    ReadValue(f, presence, Cond.True, Cond.In(f.Nullable, presence), f.Prop, false);
                    w.Line("if (reader.Position - _start != (int)_tagSize)");
                    w.Line($"    throw new ProtocolException($\"Tagged field {Where(f)} declared {{_tagSize}} bytes but used {{reader.Position - _start}}.\");");
                    w.Line("break;");
                    w.Close();
                }
                w.Line("default:");
                w.Line("    (UnknownTaggedFields ??= new()).Add(reader.ReadUnknownTaggedField((int)_tag, (int)_tagSize));");
                w.Line("    break;");
                w.Close();
            }
            w.Close();
        });
        w.Close();
    }

    /// <summary>Reads one value of field f into target. elem=true reads an array element of f's element type.</summary>
    private void ReadValue(FieldSpec f, VRange ctx, Cond compact, Cond nullOk, string target, bool elem)
    {
        var w = _w;
        string type = elem ? f.ElemType : f.Type;
        bool typedNullable = !elem && f.TypedNullable;
        if (!elem && f.IsArray)
        {
            string n = w.Fresh("n"), l = w.Fresh("l"), i = w.Fresh("i"), e = w.Fresh("e");
            w.Line($"int {n} = {compact.Tern("reader.ReadCompactArrayLength()", "reader.ReadArrayLength()")};");
            w.Open($"if ({n} < 0)");
            if (typedNullable)
            {
                NullCheck(nullOk, f);
                w.Line($"{target} = null;");
            }
            else w.Line($"throw new ProtocolException(\"Non-nullable array {Where(f)} was null.\");");
            w.Close();
            w.Open("else");
            string ecs = ElemCs(f.ElemType, f.Struct);
            // The count was checked against the bytes left, but not the bytes each element needs: size the list by
            // what is cheap and let it grow with the elements that really parse (KafkaReader.InitialCapacity).
            w.Line($"var {l} = new List<{ecs}>(KafkaReader.InitialCapacity({n}));");
            w.Open($"for (int {i} = 0; {i} < {n}; {i}++)");
            w.Line($"{ecs} {e};");
            ReadValue(f, ctx, compact, Cond.False, e, true);
            w.Line($"{l}.Add({e});");
            w.Close();
            w.Line($"{target} = {l};");
            w.Close();
            return;
        }
        if (f.Struct is not null)
        {
            string cn = f.Struct.ClassName;
            void ReadStruct()
            {
                string sv = w.Fresh("s");
                w.Line($"var {sv} = new {cn}();");
                w.Line($"{sv}.Read(ref reader, version);");
                w.Line($"{target} = {sv};");
            }
            if (typedNullable && !nullOk.IsFalse)
            {
                // KIP-893 nullable structs: an int8 marker, -1 for null, 1 for present.
                w.If(nullOk, () =>
                {
                    w.Line($"if (reader.ReadInt8() < 0) {target} = null;");
                    w.Open("else");
                    ReadStruct();
                    w.Close();
                }, ReadStruct);
            }
            else ReadStruct();
            return;
        }
        switch (type)
        {
            case "string":
                if (typedNullable)
                {
                    w.Line($"{target} = {compact.Tern("reader.ReadCompactNullableString()", "reader.ReadNullableString()")};");
                    NullCheckAfter(nullOk, f, target);
                }
                else w.Line($"{target} = {compact.Tern("reader.ReadCompactString()", "reader.ReadString()")};");
                break;
            case "bytes":
                if (typedNullable)
                {
                    w.Line($"{target} = {compact.Tern("reader.ReadCompactNullableBytes()", "reader.ReadNullableBytes()")};");
                    NullCheckAfter(nullOk, f, target);
                }
                else w.Line($"{target} = {compact.Tern("reader.ReadCompactNullableBytes()", "reader.ReadNullableBytes()")} ?? throw new ProtocolException(\"Non-nullable bytes {Where(f)} was null.\");");
                break;
            case "records":
                // Zero copy: the records slice the request frame.
                w.Line($"{target} = {compact.Tern("reader.ReadCompactNullableMemory()", "reader.ReadNullableMemory()")};");
                NullCheckAfter(nullOk, f, target);
                break;
            default:
                w.Line($"{target} = reader.Read{Prim[type].Method}();");
                break;
        }
    }

    private void NullCheck(Cond nullOk, FieldSpec f)
    {
        if (nullOk.IsTrue) return;
        string msg = $"throw new ProtocolException($\"Null value for non-nullable field {Where(f)} at version {{version}}.\");";
        if (nullOk.IsFalse) _w.Line(msg);
        else _w.Line($"if ({nullOk.Not}) {msg}");
    }

    private void NullCheckAfter(Cond nullOk, FieldSpec f, string target)
    {
        if (nullOk.IsTrue) return;
        _w.Open($"if ({target} is null)");
        NullCheck(nullOk, f);
        _w.Close();
    }
}
