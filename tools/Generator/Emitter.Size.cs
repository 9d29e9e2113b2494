using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Kayak.Generator;

/// <summary>The Size method (encoded length at a version) of each generated message and struct.</summary>
internal sealed partial class Emitter
{
    // ---------------------------------------------------------------- Size

    private void EmitSize(StructSpec s)
    {
        var w = _w;
        var ctx = StructCtx(s);
        w.Open("public int Size(short version)");
        w.Line("int _size = 0;");
        foreach (var f in s.Fields)
        {
            if (f.IsTagged) continue;
            var fctx = f.Versions.Intersect(ctx);
            w.If(Cond.In(f.Versions, ctx), () => SizeValue(f, Compact(f, fctx), "_size", f.Prop, false, Cond.In(f.Nullable, fctx)));
        }
        var flex = _msg.Flexible.Intersect(ctx);
        w.If(Flexible(ctx), () =>
        {
            w.Line("int _numTagged = UnknownTaggedFields?.Count ?? 0;");
            foreach (var f in s.Fields.Where(f => f.IsTagged).OrderBy(f => f.Tag))
            {
                var p = f.Versions.Intersect(f.Tagged).Intersect(flex);
                var pc = Cond.In(p, flex);
                if (pc.IsFalse) continue;
                w.Open($"if ({(pc.IsTrue ? "" : pc.Expr + " && ")}{NonDefault(f, f.Prop)})");
                w.Line("_numTagged++;");
                string ts = w.Fresh("ts");
                w.Line($"int {ts} = 0;");
                SizeValue(f, Cond.True, ts, f.Prop, false, Cond.In(f.Nullable, p));
                w.Line($"_size += VarInt.SizeOfUnsigned((uint){f.Tag}) + VarInt.SizeOfUnsigned((uint){ts}) + {ts};");
                w.Close();
            }
            w.Line("_size += VarInt.SizeOfUnsigned((uint)_numTagged) + TaggedFieldSupport.Size(UnknownTaggedFields);");
        });
        w.Line("return _size;");
        w.Close();
    }

    private void SizeValue(FieldSpec f, Cond compact, string acc, string x, bool elem, Cond? nullOk = null)
    {
        var w = _w;
        string type = elem ? f.ElemType : f.Type;
        bool typedNullable = !elem && f.TypedNullable;
        if (!elem && f.IsArray)
        {
            string count = typedNullable ? $"({x} is null ? -1 : {x}.Count)" : $"{x}.Count";
            w.Line($"{acc} += {compact.Tern($"VarInt.SizeOfUnsigned((uint)({count} + 1))", "4")};");
            if (typedNullable) w.Open($"if ({x} is not null)"); else w.Open();
            if (f.Struct is null && Prim.TryGetValue(f.ElemType, out var pe))
                w.Line($"{acc} += {x}.Count * {pe.Size};");
            else
            {
                string e = w.Fresh("e");
                w.Open($"foreach (var {e} in {x})");
                SizeValue(f, compact, acc, e, true);
                w.Close();
            }
            w.Close();
            return;
        }
        if (f.Struct is not null)
        {
            if (typedNullable)
            {
                var nc = nullOk ?? Cond.False;
                if (!nc.IsFalse)
                    w.Line(nc.IsTrue ? $"{acc} += 1;" : $"if ({nc.Expr}) {acc} += 1;");
                w.Line($"if ({x} is not null) {acc} += {x}.Size(version);");
            }
            else w.Line($"{acc} += {x}.Size(version);");
            return;
        }
        switch (type)
        {
            case "string":
            {
                string fx = Fitted(f, x, elem);
                w.Line($"{acc} += {compact.Tern($"VarInt.SizeOfCompactString({fx})", typedNullable ? $"2 + ({x} is null ? 0 : VarInt.SizeOfString({fx}))" : $"2 + VarInt.SizeOfString({fx})")};");
                break;
            }
            case "bytes":
                if (typedNullable)
                    w.Line($"{acc} += {compact.Tern($"({x} is null ? 1 : VarInt.SizeOfUnsigned((uint){x}.Length + 1) + {x}.Length)", $"4 + ({x} is null ? 0 : {x}.Length)")};");
                else
                    w.Line($"{acc} += {compact.Tern($"VarInt.SizeOfUnsigned((uint){x}.Length + 1) + {x}.Length", $"4 + {x}.Length")};");
                break;
            case "records":
                w.Line($"{acc} += {compact.Tern($"(!{x}.HasValue ? 1 : VarInt.SizeOfUnsigned((uint){x}.GetValueOrDefault().Length + 1) + {x}.GetValueOrDefault().Length)", $"4 + {x}.GetValueOrDefault().Length")};");
                break;
            default:
                w.Line($"{acc} += {Prim[type].Size};");
                break;
        }
    }
}
