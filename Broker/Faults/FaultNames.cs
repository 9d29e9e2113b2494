using System.Globalization;
using Kayak.Protocol;

namespace Kayak.Broker;

/// <summary>
/// API keys and error codes by the names people type (issue 14's control endpoint): Kafka's error names
/// ("NOT_LEADER_OR_FOLLOWER"), Kayak's enum names ("NotLeaderOrFollower") or numbers; API names as in Kafka's ApiKeys
/// ("PRODUCE", "OFFSET_COMMIT"), the enum's ("OffsetCommit") or the key number.
/// </summary>
public static class FaultNames
{
    public static bool TryParseErrorCode(string text, out ErrorCode code)
    {
        text = text.Trim();
        if (short.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out short n)) { code = (ErrorCode)n; return ErrorCodes.IsKnown(code); }
        string squashed = Squash(text);
        foreach (var c in Enum.GetValues<ErrorCode>())
            if (string.Equals(Squash(ErrorCodes.KafkaName(c)), squashed, StringComparison.OrdinalIgnoreCase)
                || string.Equals(c.ToString(), squashed, StringComparison.OrdinalIgnoreCase))
            {
                code = c;
                return true;
            }
        code = default;
        return false;
    }

    public static bool TryParseApiKey(string text, out ApiKey api)
    {
        text = text.Trim();
        if (short.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out short n)) { api = (ApiKey)n; return ApiVersionTable.Find(api) is not null; }
        string squashed = Squash(text);
        foreach (var a in Enum.GetValues<ApiKey>())
            if (string.Equals(a.ToString(), squashed, StringComparison.OrdinalIgnoreCase) && ApiVersionTable.Find(a) is not null)
            {
                api = a;
                return true;
            }
        api = default;
        return false;
    }

    private static string Squash(string s) => s.Replace("_", "", StringComparison.Ordinal);
}
