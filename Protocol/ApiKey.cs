// Placeholder until the generator writes Protocol/Generated/ApiKey.g.cs: delete this file then.
namespace Kayak.Protocol;

public enum ApiKey : short
{
    Produce = 0,
    Fetch = 1,
    ListOffsets = 2,
    Metadata = 3,
    ApiVersions = 18,
}
