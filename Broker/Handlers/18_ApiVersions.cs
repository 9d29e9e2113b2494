// ApiVersions (key 18), v0-4. Answers with ApiVersionTable.Served, the single list of what this broker
// serves. v3+ carries client software name/version (KIP-511) and tagged feature lists; we advertise no
// features (no KRaft feature levels to finalize). A request newer than v4 is answered by the connection
// at v0 with UNSUPPORTED_VERSION and our ranges, as Kafka does.
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Broker.Handlers;

public sealed class ApiVersionsHandler : ApiHandler<ApiVersionsRequest>
{
    public override ApiKey Key => ApiKey.ApiVersions;

    protected override ValueTask<IApiMessage?> HandleAsync(RequestContext context, ApiVersionsRequest request)
    {
        // v3+: Kafka validates the client software name and version (KIP-511) and answers INVALID_REQUEST.
        if (context.ApiVersion >= 3 && (!IsValidSoftwareToken(request.ClientSoftwareName) || !IsValidSoftwareToken(request.ClientSoftwareVersion)))
        {
            var error = Build();
            error.ErrorCode = (short)ErrorCode.InvalidRequest;
            return Done(error);
        }
        return Done(Build());
    }

    /// <summary>KIP-511: [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?</summary>
    private static bool IsValidSoftwareToken(string s)
    {
        if (s.Length == 0) return false;
        if (!char.IsAsciiLetterOrDigit(s[0]) || !char.IsAsciiLetterOrDigit(s[^1])) return false;
        foreach (char c in s)
            if (!char.IsAsciiLetterOrDigit(c) && c != '-' && c != '.') return false;
        return true;
    }

    private static ApiVersionsResponse Build()
    {
        var response = new ApiVersionsResponse();
        foreach (var api in ApiVersionTable.Served)
            response.ApiKeys.Add(new ApiVersionsResponse.ApiVersion { ApiKey = (short)api.Key, MinVersion = api.MinVersion, MaxVersion = api.MaxVersion });
        return response;
    }

    /// <summary>The v0 answer to an ApiVersions request newer than we serve (KIP-511).</summary>
    internal static ApiVersionsResponse UnsupportedVersionResponse()
    {
        var response = Build();
        response.ErrorCode = (short)ErrorCode.UnsupportedVersion;
        return response;
    }
}
