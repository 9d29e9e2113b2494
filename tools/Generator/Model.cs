using System.Text.Json;
using System.Text.RegularExpressions;

namespace Kayak.Generator;

/// <summary>An inclusive version range; empty when Lo &gt; Hi. "N+" is open-ended (Hi = short.MaxValue).</summary>
internal readonly record struct VRange(int Lo, int Hi)
{
    public static readonly VRange None = new(1, 0);
    public bool IsEmpty => Lo > Hi;
    public bool Contains(int v) => v >= Lo && v <= Hi;

    public VRange Intersect(VRange o)
    {
        var r = new VRange(Math.Max(Lo, o.Lo), Math.Min(Hi, o.Hi));
        return r.IsEmpty ? None : r;
    }

    public static VRange Parse(string? s, VRange fallback)
    {
        if (s is null) return fallback;
        s = s.Trim();
        if (s == "none" || s.Length == 0) return None;
        if (s.EndsWith('+')) return new VRange(int.Parse(s[..^1]), short.MaxValue);
        int dash = s.IndexOf('-');
        if (dash > 0) return new VRange(int.Parse(s[..dash]), int.Parse(s[(dash + 1)..]));
        int v = int.Parse(s);
        return new VRange(v, v);
    }
}

/// <summary>A condition on <c>version</c> that may be statically known within a context range.</summary>
internal readonly record struct Cond(bool IsTrue, bool IsFalse, string Expr)
{
    public static readonly Cond True = new(true, false, "true");
    public static readonly Cond False = new(false, true, "false");

    /// <summary>"version in r", simplified given that version is known to lie in ctx.</summary>
    public static Cond In(VRange r, VRange ctx)
    {
        var eff = r.Intersect(ctx);
        if (eff.IsEmpty) return False;
        if (eff.Lo <= ctx.Lo && eff.Hi >= ctx.Hi) return True;
        bool lo = eff.Lo > ctx.Lo, hi = eff.Hi < ctx.Hi;
        if (lo && hi && eff.Lo == eff.Hi) return new(false, false, $"version == {eff.Lo}");
        if (lo && hi) return new(false, false, $"(version >= {eff.Lo} && version <= {eff.Hi})");
        return new(false, false, lo ? $"version >= {eff.Lo}" : $"version <= {eff.Hi}");
    }

    public string Not => IsTrue ? "false" : IsFalse ? "true" : $"!({Expr})";
    public string Tern(string a, string b) => IsTrue ? a : IsFalse ? b : $"({Expr} ? {a} : {b})";
}

internal sealed class FieldSpec
{
    public required string Name;
    public required string Prop;
    public required string Type;       // spec type, e.g. "int32", "[]Topic"
    public VRange Versions;
    public VRange Nullable;
    public VRange Tagged = VRange.None;
    public int Tag = -1;
    public bool Ignorable;
    public JsonElement? Default;
    public VRange? FlexOverride;
    public StructSpec? Struct;          // for struct or array-of-struct fields
    public string? StructRef;           // unresolved struct name

    public bool IsArray => Type.StartsWith("[]", StringComparison.Ordinal);
    public string ElemType => IsArray ? Type[2..] : Type;
    public bool IsTagged => Tag >= 0;
    public bool TypedNullable => !Nullable.IsEmpty;
    public bool IsStructType => Struct is not null;
}

internal sealed class StructSpec
{
    public required string SpecName;
    public string ClassName = "";
    public List<FieldSpec> Fields = new();
    public VRange Versions;
    public bool IsRoot;
}

internal sealed class MessageSpec
{
    public required string Name;
    public required string Kind;        // request, response, header, data
    public int? ApiKey;
    public VRange Valid;
    public VRange Flexible;
    public List<string> Listeners = new();
    public bool Unstable;
    public required StructSpec Root;
    public List<StructSpec> Structs = new(); // nested types, in definition order
    public required string Namespace;
    public required string File;

    public int FlexibleFrom => Flexible.IsEmpty ? short.MaxValue : Flexible.Lo;
}

internal static class SpecParser
{
    private static readonly HashSet<string> Primitives = new()
    {
        "int8", "int16", "uint16", "int32", "uint32", "int64", "float64", "bool", "string", "bytes", "records", "uuid",
    };

    public static bool IsPrimitive(string t) => Primitives.Contains(t);

    private static readonly Regex LineComment = new(@"^\s*//.*$", RegexOptions.Multiline);

    public static MessageSpec Load(string path, string ns)
    {
        string text = File.ReadAllText(path);
        using var doc = JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        var root = doc.RootElement;
        string name = root.GetProperty("name").GetString()!;
        var valid = VRange.Parse(root.GetProperty("validVersions").GetString(), VRange.None);
        var msg = new MessageSpec
        {
            Name = name,
            Kind = root.GetProperty("type").GetString()!,
            Valid = valid,
            Flexible = VRange.Parse(root.TryGetProperty("flexibleVersions", out var fv) ? fv.GetString() : "none", VRange.None),
            Root = new StructSpec { SpecName = name, ClassName = name, Versions = valid, IsRoot = true },
            Namespace = ns,
            File = path,
        };
        if (root.TryGetProperty("apiKey", out var ak)) msg.ApiKey = ak.GetInt32();
        if (root.TryGetProperty("listeners", out var ls))
            foreach (var l in ls.EnumerateArray()) msg.Listeners.Add(l.GetString()!);
        if (root.TryGetProperty("latestVersionUnstable", out var lu)) msg.Unstable = lu.ValueKind == JsonValueKind.True;

        var byName = new Dictionary<string, StructSpec>(StringComparer.Ordinal);
        if (root.TryGetProperty("commonStructs", out var cs))
        {
            foreach (var c in cs.EnumerateArray())
            {
                var s = new StructSpec
                {
                    SpecName = c.GetProperty("name").GetString()!,
                    Versions = VRange.Parse(c.TryGetProperty("versions", out var cv) ? cv.GetString() : null, valid),
                };
                byName[s.SpecName] = s;
                msg.Structs.Add(s);
            }
            foreach (var c in cs.EnumerateArray())
            {
                var s = byName[c.GetProperty("name").GetString()!];
                s.Fields = ParseFields(c.GetProperty("fields"), s.Versions, msg, byName);
            }
        }
        msg.Root.Fields = ParseFields(root.GetProperty("fields"), valid, msg, byName);
        Resolve(msg.Root, byName);
        foreach (var s in msg.Structs) Resolve(s, byName);
        AssignNames(msg);
        return msg;
    }

    private static void Resolve(StructSpec s, Dictionary<string, StructSpec> byName)
    {
        foreach (var f in s.Fields)
        {
            if (f.StructRef is null) continue;
            if (!byName.TryGetValue(f.StructRef, out var target))
                throw new InvalidOperationException($"Unknown struct type {f.StructRef} in field {f.Name}");
            f.Struct = target;
        }
    }

    private static List<FieldSpec> ParseFields(JsonElement arr, VRange parentVersions, MessageSpec msg, Dictionary<string, StructSpec> byName)
    {
        var list = new List<FieldSpec>();
        foreach (var e in arr.EnumerateArray())
        {
            string name = e.GetProperty("name").GetString()!;
            var f = new FieldSpec
            {
                Name = name,
                Prop = char.ToUpperInvariant(name[0]) + name[1..],
                Type = e.GetProperty("type").GetString()!.Trim(),
                Versions = VRange.Parse(e.TryGetProperty("versions", out var v) ? v.GetString() : null, parentVersions),
            };
            f.Nullable = VRange.Parse(e.TryGetProperty("nullableVersions", out var nv) ? nv.GetString() : null, VRange.None);
            if (e.TryGetProperty("tag", out var tag))
            {
                f.Tag = tag.ValueKind == JsonValueKind.String ? int.Parse(tag.GetString()!) : tag.GetInt32();
                f.Tagged = VRange.Parse(e.TryGetProperty("taggedVersions", out var tv) ? tv.GetString() : null, f.Versions);
            }
            if (e.TryGetProperty("ignorable", out var ig)) f.Ignorable = ig.ValueKind == JsonValueKind.True;
            if (e.TryGetProperty("default", out var d)) f.Default = d.Clone();
            if (e.TryGetProperty("flexibleVersions", out var ff)) f.FlexOverride = VRange.Parse(ff.GetString(), VRange.None);
            string elem = f.ElemType;
            if (!IsPrimitive(elem))
            {
                if (e.TryGetProperty("fields", out var sub))
                {
                    if (byName.ContainsKey(elem)) throw new InvalidOperationException($"Duplicate struct {elem} in {msg.Name}");
                    var s = new StructSpec { SpecName = elem, Versions = f.Versions };
                    byName[elem] = s;
                    msg.Structs.Add(s);
                    s.Fields = ParseFields(sub, f.Versions, msg, byName);
                    f.Struct = s;
                }
                else f.StructRef = elem;
            }
            list.Add(f);
        }
        return list;
    }

    // Members every generated class declares (or inherits); a spec field with one of these names gets a "Value" suffix.
    private static readonly HashSet<string> ReservedMembers = new(StringComparer.Ordinal)
    {
        "Read", "Write", "Size", "UnknownTaggedFields", "HasOnlyDefaults", "GetType", "Equals", "GetHashCode", "ToString",
    };

    // Extra members of top-level classes only.
    private static readonly HashSet<string> ReservedRootMembers = new(StringComparer.Ordinal)
    {
        "Key", "ApiKey", "LowestSupportedVersion", "HighestSupportedVersion", "FlexibleFromVersion",
    };

    /// <summary>
    /// C# forbids a member named like its enclosing type and a nested type named like a sibling member
    /// (Java's generator has no such clash because it uses accessor methods), so clashing struct classes get a "Data" suffix.
    /// </summary>
    private static void AssignNames(MessageSpec msg)
    {
        foreach (var f in msg.Root.Fields)
            if (ReservedMembers.Contains(f.Prop) || ReservedRootMembers.Contains(f.Prop) || f.Prop == msg.Name) f.Prop += "Value";
        var taken = new HashSet<string>(StringComparer.Ordinal) { msg.Name };
        foreach (var f in msg.Root.Fields) taken.Add(f.Prop);
        foreach (var r in ReservedMembers) taken.Add(r);
        foreach (var r in ReservedRootMembers) taken.Add(r);
        foreach (var s in msg.Structs)
        {
            foreach (var f in s.Fields)
                if (ReservedMembers.Contains(f.Prop)) f.Prop += "Value";
            string cn = s.SpecName;
            while (taken.Contains(cn) || s.Fields.Exists(f => f.Prop == cn)) cn += "Data";
            s.ClassName = cn;
            taken.Add(cn);
        }
    }
}
