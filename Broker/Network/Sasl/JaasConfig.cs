using Kayak.Broker.Config;

namespace Kayak.Broker.Network.Sasl;

/// <summary>
/// One login module entry of a sasl.jaas.config value, read as Kafka's JaasConfig does (a StreamTokenizer over
/// "LoginModuleClass controlFlag key=value ... ;"): values are quoted strings or bare words, the entry ends in ';'.
/// Kafka requires exactly one module in the property ("JAAS config property contains N login modules, should be 1 module").
/// </summary>
internal sealed record JaasEntry(string LoginModule, string ControlFlag, IReadOnlyDictionary<string, string> Options)
{
    public const string PlainLoginModule = "org.apache.kafka.common.security.plain.PlainLoginModule";
    public const string ScramLoginModule = "org.apache.kafka.common.security.scram.ScramLoginModule";

    private static readonly string[] Flags = ["required", "requisite", "sufficient", "optional"];

    /// <summary>Parses the value of <paramref name="key"/>; a ConfigException naming the key (never echoing the value: it holds passwords).</summary>
    public static JaasEntry Parse(string key, string value)
    {
        var tokens = Tokenize(key, value);
        if (tokens.Count == 0 || tokens[^1] != (";", false))
            throw Invalid(key, tokens.Count == 0 ? "JAAS config property does not contain any login modules" : "JAAS config entry not terminated by semi-colon");
        int modules = tokens.Count(t => t == (";", false));
        if (modules != 1) throw Invalid(key, $"JAAS config property contains {modules} login modules, should be 1 module");
        if (tokens.Count < 3 || tokens[0].Quoted || tokens[1].Quoted)
            throw Invalid(key, "JAAS config entry must start with a login module class and a control flag");
        string flag = tokens[1].Text.ToLowerInvariant();
        if (Array.IndexOf(Flags, flag) < 0) throw Invalid(key, $"Invalid control flag '{tokens[1].Text}'");
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        int i = 2;
        while (i < tokens.Count - 1)
        {
            if (i + 2 >= tokens.Count || tokens[i].Quoted || tokens[i + 1] != ("=", false) || tokens[i + 2] == (";", false))
                throw Invalid(key, "Syntax error in JAAS config: expected key=value");
            options[tokens[i].Text] = tokens[i + 2].Text;
            i += 3;
        }
        return new JaasEntry(tokens[0].Text, flag, options);
    }

    private static ConfigException Invalid(string key, string problem) => new(key, "[hidden]", problem);

    private static List<(string Text, bool Quoted)> Tokenize(string key, string s)
    {
        var tokens = new List<(string, bool)>();
        int i = 0;
        while (i < s.Length)
        {
            char c = s[i];
            if (char.IsWhiteSpace(c)) { i++; continue; }
            if (c is ';' or '=') { tokens.Add((c.ToString(), false)); i++; continue; }
            if (c is '"' or '\'')
            {
                var sb = new System.Text.StringBuilder();
                i++;
                while (true)
                {
                    if (i >= s.Length) throw Invalid(key, "Unterminated quoted string in JAAS config");
                    if (s[i] == c) { i++; break; }
                    if (s[i] == '\\' && i + 1 < s.Length) i++;
                    sb.Append(s[i++]);
                }
                tokens.Add((sb.ToString(), true));
                continue;
            }
            int start = i;
            while (i < s.Length && !char.IsWhiteSpace(s[i]) && s[i] is not (';' or '=' or '"' or '\'')) i++;
            tokens.Add((s[start..i], false));
        }
        return tokens;
    }
}
