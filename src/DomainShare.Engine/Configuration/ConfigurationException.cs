namespace DomainShare.Engine.Configuration;

/// <summary>A configuration file that cannot be used, with the file, line and field at fault.</summary>
public sealed class ConfigurationException : DomainShareException
{
    public ConfigurationException(string file, int line, string field, string problem, Exception? inner = null)
        : base(ErrorIds.InvalidConfiguration, ErrorKind.InvalidData, Format(file, line, field, problem),
               $"Correct '{field}' in '{file}' (line {line}); the file was left as it is.", file, inner)
    {
        File = file;
        Line = line;
        Field = field;
        Problem = problem;
    }

    public string File { get; }
    public int Line { get; }
    public string Field { get; }
    public string Problem { get; }

    private static string Format(string file, int line, string field, string problem)
        => line > 0
            ? $"Invalid configuration '{file}', line {line}, field '{field}': {problem}"
            : $"Invalid configuration '{file}', field '{field}': {problem}";
}
