using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.RegularExpressions;
using Kayak.Broker.Config;

namespace Kayak.Broker.Network.Tls;

/// <summary>
/// The name Kafka's DefaultKafkaPrincipalBuilder starts from for a client certificate: Java's
/// X500Principal.getName(), the RFC 2253 form — the RDNs from last to first, joined by "," without spaces, the
/// RFC 2253 keywords (CN, L, ST, O, OU, C, STREET, DC, UID) by name and any other attribute as its OID with the DER
/// value in hex (so an e-mail address reads 1.2.840.113549.1.9.1=#16…, as in Java).
/// </summary>
internal static class X500Names
{
    private static readonly Dictionary<string, string> Keywords = new()
    {
        ["2.5.4.3"] = "CN", ["2.5.4.7"] = "L", ["2.5.4.8"] = "ST", ["2.5.4.10"] = "O", ["2.5.4.11"] = "OU",
        ["2.5.4.6"] = "C", ["2.5.4.9"] = "STREET", ["0.9.2342.19200300.100.1.25"] = "DC", ["0.9.2342.19200300.100.1.1"] = "UID",
    };

    public static string Rfc2253(X500DistinguishedName name)
    {
        var rdns = new List<string>();
        var reader = new AsnReader(name.RawData, AsnEncodingRules.DER);
        var sequence = reader.ReadSequence();
        while (sequence.HasData)
        {
            var set = sequence.ReadSetOf();
            var attributes = new List<string>();
            while (set.HasData)
            {
                var attribute = set.ReadSequence();
                string oid = attribute.ReadObjectIdentifier();
                var encoded = attribute.ReadEncodedValue();
                attributes.Add(Keywords.TryGetValue(oid, out var keyword) && TryReadString(encoded, out var text)
                    ? keyword + "=" + Escape(text)
                    : oid + "=#" + Convert.ToHexStringLower(encoded.Span));
            }
            rdns.Add(string.Join('+', attributes));
        }
        rdns.Reverse();
        return string.Join(',', rdns);
    }

    private static bool TryReadString(ReadOnlyMemory<byte> encoded, out string text)
    {
        text = "";
        try
        {
            var value = new AsnReader(encoded, AsnEncodingRules.BER);
            var tag = value.PeekTag();
            if (tag.TagClass != TagClass.Universal) return false;
            var type = (UniversalTagNumber)tag.TagValue;
            if (type is not (UniversalTagNumber.UTF8String or UniversalTagNumber.PrintableString or UniversalTagNumber.IA5String
                or UniversalTagNumber.BMPString or UniversalTagNumber.T61String or UniversalTagNumber.VisibleString))
                return false;
            text = value.ReadCharacterString(type);
            return true;
        }
        catch (AsnContentException)
        {
            return false;
        }
    }

    /// <summary>RFC 2253 section 2.4 escaping, as Java applies it.</summary>
    private static string Escape(string value)
    {
        var sb = new StringBuilder(value.Length);
        for (int i = 0; i < value.Length; i++)
        {
            char c = value[i];
            if (c is ',' or '+' or '"' or '\\' or '<' or '>' or ';' || (i == 0 && c is '#' or ' ') || (i == value.Length - 1 && c == ' '))
                sb.Append('\\');
            sb.Append(c);
        }
        return sb.ToString();
    }
}

/// <summary>
/// ssl.principal.mapping.rules, Kafka's SslPrincipalMapper: a comma-separated list of DEFAULT (the name unchanged) and
/// RULE:pattern/replacement/[LU] (the whole name must match the pattern; the replacement may use $1…, L or U then
/// lower- or upper-cases the result). The first rule that applies wins; when none does, authentication fails.
/// </summary>
internal sealed class SslPrincipalMapper
{
    private static readonly Regex RuleParser = new(@"\G\s*(?:(DEFAULT)|RULE:((?:\\/|[^/])*)/((?:\\/|[^/])*)/([LU]?))\s*(?:,|$)",
        RegexOptions.CultureInvariant);

    private readonly List<(Regex? Pattern, string Replacement, char Case)> _rules;

    private SslPrincipalMapper(List<(Regex?, string, char)> rules) { _rules = rules; }

    public static SslPrincipalMapper Parse(string key, string rules)
    {
        var list = new List<(Regex?, string, char)>();
        string text = rules.Trim();
        int at = 0;
        while (at < text.Length)
        {
            var m = RuleParser.Match(text, at);
            if (!m.Success || m.Length == 0) throw new ConfigException(key, rules, $"Invalid rule: {text[at..]}");
            at += m.Length;
            if (m.Groups[1].Success) { list.Add((null, "", ' ')); continue; }
            Regex pattern;
            try { pattern = new Regex("^(?:" + m.Groups[2].Value.Replace("\\/", "/") + ")$", RegexOptions.CultureInvariant); }
            catch (ArgumentException e) { throw new ConfigException(key, rules, $"Invalid rule pattern {m.Groups[2].Value}: {e.Message}"); }
            string replacement = m.Groups[3].Value.Replace("\\/", "/");
            list.Add((pattern, replacement, m.Groups[4].Value is [var c] ? c : ' '));
        }
        if (list.Count == 0) list.Add((null, "", ' '));
        return new SslPrincipalMapper(list);
    }

    /// <summary>The short name of an RFC 2253 distinguished name, or null when no rule applies.</summary>
    public string? Map(string distinguishedName)
    {
        foreach (var (pattern, replacement, letterCase) in _rules)
        {
            if (pattern is null) return distinguishedName;
            if (!pattern.IsMatch(distinguishedName)) continue;
            string result = pattern.Replace(distinguishedName, replacement);
            return letterCase switch
            {
                'L' => result.ToLowerInvariant(),
                'U' => result.ToUpperInvariant(),
                _ => result,
            };
        }
        return null;
    }
}
