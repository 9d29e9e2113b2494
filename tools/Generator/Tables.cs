namespace Kayak.Generator;

/// <summary>The ApiKey enum and the per-API lookup table.</summary>
internal static class Tables
{
    private static List<(MessageSpec Req, MessageSpec Resp)> Apis(List<MessageSpec> all)
    {
        var list = new List<(MessageSpec, MessageSpec)>();
        foreach (var req in all.Where(m => m.Kind == "request" && m.ApiKey is not null).OrderBy(m => m.ApiKey))
        {
            var resp = all.Single(m => m.Kind == "response" && m.ApiKey == req.ApiKey);
            list.Add((req, resp));
        }
        return list;
    }

    public static string ApiKeyEnum(List<MessageSpec> all)
    {
        var w = new CodeWriter();
        w.Line(Emitter.Banner);
        w.Line("namespace Kayak.Protocol;");
        w.Line();
        w.Line("/// <summary>Kafka API keys, one per request/response pair in the message specs.</summary>");
        w.Open("public enum ApiKey : short");
        foreach (var (req, _) in Apis(all)) w.Line($"{Emitter.ApiKeyName(req)} = {req.ApiKey},");
        w.Close();
        return w.ToString();
    }

    public static string ApiMessageTypes(List<MessageSpec> all)
    {
        var apis = Apis(all);
        int max = apis.Max(a => a.Req.ApiKey!.Value);
        var w = new CodeWriter();
        w.Line(Emitter.Banner);
        w.Line("#nullable enable");
        w.Line();
        w.Line("namespace Kayak.Protocol.Messages;");
        w.Line();
        w.Line("/// <summary>One API: its version range, first flexible version (short.MaxValue if never), whether brokers serve it and whether its latest version is unstable.</summary>");
        w.Line("public sealed record ApiInfo(ApiKey Key, string Name, short LowestVersion, short HighestVersion, short FlexibleFromVersion, bool BrokerListener, bool Unstable = false);");
        w.Line();
        w.Open("public static class ApiMessageTypes");
        w.Line("/// <summary>Every API in the specs, ordered by key.</summary>");
        w.Line("public static IReadOnlyList<ApiInfo> All { get; } = new ApiInfo[]");
        w.Open();
        foreach (var (req, _) in apis)
        {
            bool broker = req.Listeners.Contains("broker");
            w.Line($"new(ApiKey.{Emitter.ApiKeyName(req)}, \"{Emitter.ApiKeyName(req)}\", {req.Valid.Lo}, {req.Valid.Hi}, {req.FlexibleFrom}, {(broker ? "true" : "false")}, {(req.Unstable ? "true" : "false")}),");
        }
        w.Close(";");
        w.Line();
        w.Line($"private static readonly ApiInfo?[] ByKey = BuildIndex({max + 1});");
        w.Line();
        w.Open("private static ApiInfo?[] BuildIndex(int size)");
        w.Line("var index = new ApiInfo?[size];");
        w.Line("foreach (var info in All) index[(int)info.Key] = info;");
        w.Line("return index;");
        w.Close();
        w.Line();
        w.Line("public static ApiInfo? Find(ApiKey key) => (uint)(int)key < (uint)ByKey.Length ? ByKey[(int)key] : null;");
        w.Line();
        EmitFactory(w, apis, "CreateRequest", r => r.Req.Name);
        w.Line();
        EmitFactory(w, apis, "CreateResponse", r => r.Resp.Name);
        w.Line();
        w.Line("/// <summary>Request header version: 2 (flexible, KIP-482) or 1; ControlledShutdown v0 alone uses header v0.</summary>");
        w.Open("public static short RequestHeaderVersion(ApiKey key, short apiVersion)");
        w.Line("if (key == ApiKey.ControlledShutdown && apiVersion == 0) return 0;");
        w.Line("var info = Find(key) ?? throw new UnsupportedVersionException($\"Unknown API key {(short)key}.\");");
        w.Line("return apiVersion >= info.FlexibleFromVersion ? (short)2 : (short)1;");
        w.Close();
        w.Line();
        w.Line("/// <summary>Response header version: 1 when flexible, else 0. ApiVersions responses always use v0 so a client can parse them before it knows the broker's versions (KIP-511).</summary>");
        w.Open("public static short ResponseHeaderVersion(ApiKey key, short apiVersion)");
        w.Line("if (key == ApiKey.ApiVersions) return 0;");
        w.Open("short flexibleFrom = key switch");
        foreach (var (_, resp) in apis) w.Line($"ApiKey.{Emitter.ApiKeyName(resp)} => {resp.FlexibleFrom},");
        w.Line("_ => throw new UnsupportedVersionException($\"Unknown API key {(short)key}.\"),");
        w.Close(";");
        w.Line("return apiVersion >= flexibleFrom ? (short)1 : (short)0;");
        w.Close();
        w.Close();
        return w.ToString();
    }

    private static void EmitFactory(CodeWriter w, List<(MessageSpec Req, MessageSpec Resp)> apis, string name, Func<(MessageSpec Req, MessageSpec Resp), string> cls)
    {
        w.Open($"public static IApiMessage {name}(ApiKey key) => key switch");
        foreach (var a in apis) w.Line($"ApiKey.{Emitter.ApiKeyName(a.Req)} => new {cls(a)}(),");
        w.Line("_ => throw new UnsupportedVersionException($\"Unknown API key {(short)key}.\"),");
        w.Close(";");
    }
}
