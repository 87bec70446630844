class AnnotatorError(Exception):
    """A problem with the user's input or setup. Its message is one line that says what to do."""


class SettingError(AnnotatorError):
    """A bad value of one named setting (an AnnotateConfig / TrainConfig field or a function argument).
    The message names the setting as the library knows it ("frames_per_video must be at least 1");
    the command-line programs show it as their flag ("--frames-per-video must be at least 1")."""

    def __init__(self, setting: str, detail: str):
        self.setting, self.detail = setting, detail
        super().__init__(f"{setting} {detail}")

    def as_flag(self) -> str:
        return f"--{self.setting.replace('_', '-')} {self.detail}"
