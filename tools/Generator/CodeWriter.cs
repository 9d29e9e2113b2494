using System.Text;

namespace Kayak.Generator;

internal sealed class CodeWriter
{
    private readonly StringBuilder _sb = new();
    private int _indent;
    private int _unique;

    public string Fresh(string prefix) => $"_{prefix}{_unique++}";

    public void Line(string s = "")
    {
        if (s.Length == 0) { _sb.Append('\n'); return; }
        _sb.Append(' ', _indent * 4).Append(s).Append('\n');
    }

    public void Open(string s) { Line(s); Line("{"); _indent++; }
    public void Open() { Line("{"); _indent++; }
    public void Close(string suffix = "") { _indent--; Line("}" + suffix); }

    /// <summary>Emits <c>if (c) a else b</c>, dropping statically dead branches so no unreachable code is generated.</summary>
    public void If(Cond c, Action whenTrue, Action? whenFalse = null)
    {
        if (c.IsTrue) { whenTrue(); return; }
        if (c.IsFalse) { whenFalse?.Invoke(); return; }
        Open($"if ({c.Expr})");
        whenTrue();
        Close();
        if (whenFalse is not null)
        {
            Open("else");
            whenFalse();
            Close();
        }
    }

    public override string ToString() => _sb.ToString();
}
