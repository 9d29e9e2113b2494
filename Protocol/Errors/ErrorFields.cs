namespace Kayak.Protocol;

/// <summary>A generated response part with an error code field.</summary>
public interface IErrorCodeField
{
    short ErrorCode { get; set; }
}

/// <summary>A generated response part with an error code and an error message field.</summary>
public interface IErrorMessageField : IErrorCodeField
{
    string? ErrorMessage { get; set; }
}

/// <summary>The one place a <see cref="KafkaError"/> is written into a response.</summary>
public static class ErrorFields
{
    /// <summary>
    /// Writes the code, and the message where the part has a message field (a null message clears it, as the
    /// handlers always did when they answered an error). Generic so a response part is not boxed.
    /// </summary>
    public static T SetError<T>(this T target, KafkaError error) where T : class, IErrorCodeField
    {
        target.ErrorCode = (short)error.Code;
        if (target is IErrorMessageField withMessage) withMessage.ErrorMessage = error.Message;
        return target;
    }

    /// <summary>The code a part carries, as the one error type (for handlers that inspect what another layer answered).</summary>
    public static ErrorCode Error<T>(this T target) where T : class, IErrorCodeField => (ErrorCode)target.ErrorCode;
}

